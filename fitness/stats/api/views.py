"""Statistics of the caller's counted sessions. Aggregated in the database per request."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fitness.stats import selectors

from .serializers import (
    ExerciseStatsParams,
    ExerciseStatsSerializer,
    RecordSerializer,
    StreaksSerializer,
    TimeseriesParams,
    TimeseriesSerializer,
)


def _params(serializer_class, request: Request) -> dict:
    serializer = serializer_class(data=request.query_params, context={"tz": request.user.tzinfo})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ExerciseStatsView(APIView):
    """Per exercise: totals, best set, average set and when, over the caller's counted sessions."""

    @extend_schema(parameters=[ExerciseStatsParams], responses=ExerciseStatsSerializer(many=True), tags=["stats"])
    def get(self, request: Request) -> Response:
        params = _params(ExerciseStatsParams, request)
        start, end = selectors.local_day_bounds(params.get("from"), params.get("to"), request.user.tzinfo)
        rows = selectors.user_exercise_stats(
            user=request.user, start=start, end=end, exercise=params.get("exercise") or None
        )
        return Response(ExerciseStatsSerializer(rows, many=True).data)


class TimeseriesView(APIView):
    """Repetitions and sets per day, ISO week or month in the profile's time zone; empty periods included.

    Without ``to`` the series ends today; without ``from`` it covers the last 30 days,
    12 weeks or 12 months. A longer series than 3700 periods (``MAX_PERIODS``) is refused:
    400 naming ``from``.
    """

    @extend_schema(parameters=[TimeseriesParams], responses=TimeseriesSerializer, tags=["stats"])
    def get(self, request: Request) -> Response:
        params = _params(TimeseriesParams, request)
        period, start, end = params["period"], params["from"], params["to"]
        exercise = params.get("exercise") or None
        results = selectors.user_timeseries(user=request.user, period=period, start=start, end=end, exercise=exercise)
        body = {
            "period": period,
            "time_zone": request.user.time_zone,
            "exercise": exercise,
            "from": start,
            "to": end,
            "results": results,
        }
        return Response(TimeseriesSerializer(body).data)


class RecordsView(APIView):
    """Personal records: most reps in a set, longest jump rope run, fastest cadence over a set."""

    @extend_schema(responses=RecordSerializer(many=True), tags=["stats"])
    def get(self, request: Request) -> Response:
        return Response(RecordSerializer(selectors.user_records(user=request.user), many=True).data)


class StreaksView(APIView):
    """Current and longest streaks of training days and training weeks (profile's time zone)."""

    @extend_schema(responses=StreaksSerializer, tags=["stats"])
    def get(self, request: Request) -> Response:
        return Response(StreaksSerializer(selectors.user_streaks(user=request.user)).data)
