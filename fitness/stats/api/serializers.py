"""Query parameters and responses of the statistics endpoints."""

from __future__ import annotations

from datetime import date, timedelta

from rest_framework import serializers

from fitness.stats.selectors import PERIODS, add_periods, count_periods, local_today, period_span, period_start
from fitness.workouts.api.filtersets import MAX_DATE, MIN_DATE, validate_query_date
from fitness.workouts.api.serializers import CatalogExerciseField

#: Longest time series one request may ask for (about ten years of days), whichever of
#: ``from`` and ``to`` are given.
MAX_PERIODS = 3700
#: Span of a time series when ``from`` is not given, per period.
DEFAULT_PERIODS = {"day": 30, "week": 12, "month": 12}
_PLURAL = {"day": "days", "week": "weeks", "month": "months"}


class _DateRangeParams(serializers.Serializer):
    """``from`` and ``to``: local dates (the profile's time zone), both inclusive, from
    ``MIN_DATE`` to ``MAX_DATE`` (400 otherwise: a day more would overflow Python's datetime)."""

    exercise = CatalogExerciseField(
        required=False, help_text="only this exercise: a catalog id (GET /api/v1/exercises/, e.g. `squat`)"
    )

    def get_fields(self) -> dict:
        fields = super().get_fields()
        # ``from`` is a Python keyword, so these are declared here rather than as attributes.
        fields["from"] = serializers.DateField(
            required=False,
            validators=[validate_query_date],
            help_text=f"first local date (YYYY-MM-DD, inclusive) in the profile's time zone, from {MIN_DATE}",
        )
        fields["to"] = serializers.DateField(
            required=False,
            validators=[validate_query_date],
            help_text=f"last local date (YYYY-MM-DD, inclusive) in the profile's time zone, to {MAX_DATE}",
        )
        return fields

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError({"to": ["must not be before 'from'"]})
        return attrs


class ExerciseStatsParams(_DateRangeParams):
    pass


class TimeseriesParams(_DateRangeParams):
    """Also resolves the defaults: ``to`` is today in ``context["tz"]`` (the profile's time zone),
    ``from`` the start of the ``DEFAULT_PERIODS`` up to ``to``. Whatever is given, the series
    covers at most ``MAX_PERIODS`` periods, all between ``MIN_DATE`` and ``MAX_DATE``."""

    period = serializers.ChoiceField(choices=PERIODS, default="day", help_text="bucket size: day, ISO week or month")

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        period = attrs["period"]
        end = attrs.get("to") or local_today(tz=self.context["tz"])
        start = attrs.get("from") or _default_start(end, period)
        # Only ``from`` can make a series long: without it, it has the default span.
        if count_periods(start, end, period) > MAX_PERIODS:
            raise _invalid("from", f"at most {MAX_PERIODS} {_PLURAL[period]} per request")
        # The span's local midnights are compared with UTC instants: a day of margin at each end.
        if period_start(start, period) < MIN_DATE:
            raise _invalid("from", f"the {period} of this date starts before {MIN_DATE}")
        try:
            _, stop = period_span(start, end, period)
        except OverflowError:
            stop = None
        if stop is None or stop > MAX_DATE + timedelta(days=1):
            raise _invalid("to", f"the {period} of this date ends after {MAX_DATE}")
        return {**attrs, "from": start, "to": end}


def _default_start(end: date, period: str) -> date:
    """The first day of the ``DEFAULT_PERIODS`` up to ``end`` (400 on ``to`` before ``MIN_DATE``)."""
    n = DEFAULT_PERIODS[period]
    try:
        start = add_periods(period_start(end, period), period, 1 - n)
    except OverflowError:
        start = date.min
    if start < MIN_DATE:
        raise _invalid("to", f"the {n} {_PLURAL[period]} up to this date start before {MIN_DATE}: give 'from' too")
    return start


def _invalid(field: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError({field: [message]})


class ExerciseStatsSerializer(serializers.Serializer):
    exercise = serializers.CharField()
    total_reps = serializers.IntegerField()
    sets = serializers.IntegerField()
    sessions = serializers.IntegerField()
    best_set_reps = serializers.IntegerField(help_text="the most repetitions in one set")
    avg_reps_per_set = serializers.FloatField()
    first_performed_at = serializers.DateTimeField()
    last_performed_at = serializers.DateTimeField()


class TimeseriesPointSerializer(serializers.Serializer):
    start = serializers.DateField(help_text="first local day of the period")
    reps = serializers.IntegerField()
    sets = serializers.IntegerField()


class TimeseriesSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=PERIODS)
    time_zone = serializers.CharField()
    exercise = serializers.CharField(allow_null=True)
    # ``from``/``to`` are added in get_fields (``from`` is a keyword).
    results = TimeseriesPointSerializer(many=True)

    def get_fields(self) -> dict:
        fields = super().get_fields()
        fields["from"] = serializers.DateField()
        fields["to"] = serializers.DateField()
        return fields


class RecordSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["most_reps", "longest_run", "fastest_cadence"])
    exercise = serializers.CharField()
    value = serializers.FloatField(help_text="the record, in `unit`")
    unit = serializers.ChoiceField(choices=["reps", "s", "reps/min"])
    reps = serializers.IntegerField()
    duration_s = serializers.FloatField()
    performed_at = serializers.DateTimeField()
    session = serializers.UUIDField()
    set = serializers.IntegerField()


class StreakSerializer(serializers.Serializer):
    current = serializers.IntegerField()
    current_start = serializers.DateField(allow_null=True)
    longest = serializers.IntegerField()
    longest_start = serializers.DateField(allow_null=True)
    longest_end = serializers.DateField(allow_null=True)
    total = serializers.IntegerField(help_text="training days (or weeks) in all")
    last = serializers.DateField(allow_null=True)


class StreaksSerializer(serializers.Serializer):
    time_zone = serializers.CharField()
    today = serializers.DateField()
    days = StreakSerializer()
    weeks = StreakSerializer(help_text="weeks are ISO weeks, named by their Monday")
