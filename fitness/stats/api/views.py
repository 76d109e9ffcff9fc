from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fitness.stats.selectors import user_exercise_stats

from .serializers import ExerciseStatsSerializer


class ExerciseStatsView(APIView):
    """The caller's totals per exercise over their counted (``done``) sessions."""

    @extend_schema(responses=ExerciseStatsSerializer(many=True), tags=["stats"])
    def get(self, request: Request) -> Response:
        rows = user_exercise_stats(user=request.user)
        return Response(ExerciseStatsSerializer(rows, many=True).data)
