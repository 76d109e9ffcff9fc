"""``GET /api/v1/exercises/``: the exercise catalog, with the method that counts each exercise now."""

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from fitness.workouts import selectors
from inference import catalog


class ExerciseSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="stable snake_case id: the upload's `exercise` hint, the sets' `exercise`")
    name = serializers.CharField(help_text="display name (English)")
    method = serializers.ChoiceField(
        choices=catalog.COUNTING_METHODS,
        help_text="what counts it when the recording has the production model's channels "
        "(`classifier`: the model has phases for it); without those channels the generic counter counts",
    )
    health_connect_type = serializers.IntegerField(
        help_text="Health Connect ExerciseSegment.segmentType (Jetpack EXERCISE_SEGMENT_TYPE_* value): "
        "0 = unknown, 38 = other workout (an exercise Health Connect has no type for)"
    )


class ExerciseViewSet(viewsets.ViewSet):
    """The exercise catalog: any signed-in user reads the same list (it holds no user data)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        tags=["exercises"],
        responses=ExerciseSerializer(many=True),
        description=(
            "Every exercise id an upload may name as its `exercise` hint (`unknown` included: count "
            "without knowing the movement), `unknown` first, then by id. Ids come from Health Connect's "
            "ExerciseSegment types, snake_cased (EXERCISE_SEGMENT_TYPE_LAT_PULL_DOWN -> lat_pull_down), "
            "plus common exercises it lacks; they never change. Not paginated."
        ),
    )
    def list(self, request: Request) -> Response:
        return Response(ExerciseSerializer(selectors.exercise_catalog(), many=True).data)
