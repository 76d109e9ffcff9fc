"""Query parameters and responses of the statistics endpoints."""

from __future__ import annotations

from rest_framework import serializers

from fitness.stats.selectors import PERIODS, count_periods

#: Longest time series one request may ask for (about ten years of days).
MAX_PERIODS = 3700
#: Span of a time series when ``from`` is not given, per period.
DEFAULT_PERIODS = {"day": 30, "week": 12, "month": 12}


class _DateRangeParams(serializers.Serializer):
    """``from`` and ``to``: local dates (the profile's time zone), both inclusive."""

    exercise = serializers.CharField(required=False, max_length=32, help_text="only this exercise (e.g. `squat`)")

    def get_fields(self) -> dict:
        fields = super().get_fields()
        # ``from`` is a Python keyword, so these are declared here rather than as attributes.
        fields["from"] = serializers.DateField(
            required=False, help_text="first local date (YYYY-MM-DD, inclusive) in the profile's time zone"
        )
        fields["to"] = serializers.DateField(
            required=False, help_text="last local date (YYYY-MM-DD, inclusive) in the profile's time zone"
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
    period = serializers.ChoiceField(choices=PERIODS, default="day", help_text="bucket size: day, ISO week or month")

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and count_periods(start, end, attrs["period"]) > MAX_PERIODS:
            raise serializers.ValidationError({"from": [f"at most {MAX_PERIODS} periods per request"]})
        return attrs


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
