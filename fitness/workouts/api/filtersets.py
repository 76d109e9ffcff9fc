"""django-filter filter sets of the history (sync) endpoints: ``/sets/`` and ``/repetitions/``."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from fitness.workouts.models import ExerciseSet, Repetition

UTC = zoneinfo.ZoneInfo("UTC")

#: The dates a query parameter may name: Python's ``date`` range less a day at each end, so
#: that a time-zone conversion (less than a day) or the day after never leaves it. Shared by
#: every date or date-time parameter of the API (history filters and statistics).
MIN_DATE = dt.date(1, 1, 2)
MAX_DATE = dt.date(9999, 12, 30)


def validate_query_date(value: dt.date | dt.datetime) -> None:
    """Refuse a date or date-time before ``MIN_DATE`` or after ``MAX_DATE``; a date-time with an
    offset must be within them in UTC too. Raises Django's ``ValidationError``, so form fields
    (django-filter) and DRF serializer fields can both use it."""
    days, message = [value], f"must be from {MIN_DATE} to {MAX_DATE}"
    if isinstance(value, dt.datetime):
        days = [value.date()]
        if timezone.is_aware(value):
            message += " (in UTC too)"
            try:
                days.append(value.astimezone(UTC).date())
            except OverflowError:
                days.append(dt.date.min)
    if not all(MIN_DATE <= day <= MAX_DATE for day in days):
        raise ValidationError(message, code="out_of_range")


class DateOrDateTimeField(forms.Field):
    """An ISO 8601 date (``2024-05-01``) or date-time (``2024-05-01T18:30:00+02:00``), within
    ``MIN_DATE`` .. ``MAX_DATE`` (see :func:`validate_query_date`)."""

    default_validators = [validate_query_date]

    default_error_messages = {
        "invalid": "Enter an ISO 8601 date (2024-05-01) or date-time (2024-05-01T18:30:00+02:00).",
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip()
        try:
            # A bare date first: ``parse_datetime`` would read it as midnight.
            parsed = parse_date(text) if len(text) == 10 else parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed


@extend_schema_field(OpenApiTypes.STR)
class PerformedBoundFilter(django_filters.Filter):
    """A lower (``from``, inclusive) or upper (``to``) bound on when a set was performed.

    A date means that local day in the caller's profile time zone: ``from`` its first
    instant, ``to`` the whole day included. A date-time without offset is local time
    too; ``to`` is exclusive for date-times (half-open ranges chain without overlap).
    """

    field_class = DateOrDateTimeField

    def __init__(self, *, upper: bool = False, **kwargs) -> None:
        self.upper = upper
        super().__init__(**kwargs)

    def filter(self, qs, value):
        if value is None:
            return qs
        tz = self.parent.time_zone
        if isinstance(value, dt.datetime):
            bound = value if timezone.is_aware(value) else timezone.make_aware(value, tz)
        else:
            day = value + dt.timedelta(days=1) if self.upper else value
            bound = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
        # In UTC: PostgreSQL refuses offsets beyond 15:59, ISO 8601 allows up to 23:59. Within
        # MIN_DATE .. MAX_DATE (validate_query_date) neither this nor the day added overflows.
        bound = bound.astimezone(UTC)
        return qs.filter(**{f"{self.field_name}__{'lt' if self.upper else 'gte'}": bound})


#: Largest row id (PostgreSQL bigint, SQLite integer): larger ids are refused, not sent to the database.
MAX_ID = 2**63 - 1


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number from 1 to ``MAX_ID`` (400 otherwise)."""

    field_class = forms.IntegerField

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class _HistoryFilterSet(django_filters.FilterSet):
    @property
    def time_zone(self) -> dt.tzinfo:
        user = getattr(self.request, "user", None)
        return getattr(user, "tzinfo", UTC)


_FROM_HELP = "performed at or after: a local date (YYYY-MM-DD, profile time zone) or an ISO 8601 date-time"
_TO_HELP = "performed before: a local date (that whole day included) or an ISO 8601 date-time (exclusive)"


class ExerciseSetFilter(_HistoryFilterSet):
    exercise = django_filters.CharFilter(field_name="exercise", help_text="only this exercise (e.g. `squat`)")
    session = django_filters.UUIDFilter(field_name="session_id", help_text="only sets of this session")
    # ``from`` is a Python keyword: declared through the class namespace.
    locals()["from"] = PerformedBoundFilter(field_name="performed_at", help_text=_FROM_HELP)
    to = PerformedBoundFilter(field_name="performed_at", upper=True, help_text=_TO_HELP)

    class Meta:
        model = ExerciseSet
        fields: list[str] = []


class RepetitionFilter(_HistoryFilterSet):
    exercise = django_filters.CharFilter(field_name="set__exercise", help_text="only this exercise (e.g. `squat`)")
    session = django_filters.UUIDFilter(field_name="set__session_id", help_text="only repetitions of this session")
    set = IdFilter(field_name="set_id", help_text="only repetitions of this set")
    locals()["from"] = PerformedBoundFilter(
        field_name="set__performed_at", help_text=_FROM_HELP + " (the time of the repetition's set)"
    )
    to = PerformedBoundFilter(field_name="set__performed_at", upper=True, help_text=_TO_HELP)

    class Meta:
        model = Repetition
        fields: list[str] = []
