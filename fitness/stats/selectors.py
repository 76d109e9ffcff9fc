"""Per-user aggregates over counted sets (reads only).

Every statistic reads :func:`counted_sets`: the user's sets in sessions whose
status is ``done``. Sets are written, replaced and deleted together with their
session in one transaction (``session_save_result``, ``session_mark_failed``,
``session_delete``), so the aggregates, computed in the database at request
time, always equal what the sessions say; there is no second copy to go stale.
The indexes on ``ExerciseSet`` (see its ``Meta``) are designed for these queries;
``bench/stats_bench.py`` measures them on five years of history.

Calendar questions (which day, week or month a set belongs to) are answered in
the user's profile time zone (``User.time_zone``); weeks start on Monday (ISO).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Literal

from django.db.models import Count, F, FloatField, Max, Min, QuerySet, Sum, Window
from django.db.models.functions import Cast, RowNumber, Trunc, TruncDate
from django.utils import timezone

from fitness.workouts import selectors as workout_selectors
from fitness.workouts.models import ExerciseSet
from fitness.workouts.services.corrections import MAX_CADENCE_HZ

if TYPE_CHECKING:
    from fitness.accounts.models import User

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")

#: Exercises whose longest continuous set (in seconds) is a personal record.
RUN_EXERCISES: tuple[str, ...] = ("jump_rope",)
#: A set needs at least this many repetitions for its cadence to count as a record
#: (a single quick repetition says nothing about a pace that can be held).
MIN_CADENCE_REPS = 5


def counted_sets(*, user: User) -> QuerySet[ExerciseSet]:
    """The user's sets in counted (``done``) sessions: the source of every statistic.

    Their ``reps`` are the user's (corrections included); a set corrected to 0 (a phantom
    set: nothing was done) is left out, so it is neither a set nor a training day.
    """
    return workout_selectors.counted_sets(user=user).filter(reps__gt=0).order_by()


# --- Calendar helpers ---------------------------------------------------------------


def local_today(*, tz: tzinfo, now: datetime | None = None) -> date:
    return timezone.localtime(now or timezone.now(), tz).date()


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The first instant of ``day`` in ``tz`` (aware)."""
    return datetime.combine(day, time.min, tzinfo=tz)


def local_day_bounds(start: date | None, end: date | None, tz: tzinfo) -> tuple[datetime | None, datetime | None]:
    """``[start 00:00, day after end 00:00)`` in ``tz``: an inclusive range of local days as instants."""
    lower = local_midnight(start, tz) if start is not None else None
    upper = local_midnight(end + timedelta(days=1), tz) if end is not None else None
    return lower, upper


def period_start(day: date, period: Period) -> date:
    """The first day of the day, ISO week (Monday) or month that holds ``day``."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def add_periods(start: date, period: Period, n: int) -> date:
    """The first day of the period ``n`` periods after (``n < 0``: before) the one starting at ``start``.

    Raises ``OverflowError`` where that leaves Python's dates (years 1 to 9999).
    """
    if period == "month":
        year, month0 = divmod(start.year * 12 + start.month - 1 + n, 12)
        if not date.min.year <= year <= date.max.year:
            raise OverflowError("date value out of range")
        return date(year, month0 + 1, 1)
    return start + timedelta(weeks=n) if period == "week" else start + timedelta(days=n)


def next_period(start: date, period: Period) -> date:
    """The first day of the period after the one starting at ``start``."""
    return add_periods(start, period, 1)


def period_span(start: date, end: date, period: Period) -> tuple[date, date]:
    """``(first, stop)``: the first day of the period holding ``start`` and the first day after
    the period holding ``end``; ``OverflowError`` where ``stop`` is past 9999-12-31."""
    return period_start(start, period), next_period(period_start(end, period), period)


def count_periods(start: date, end: date, period: Period) -> int:
    """How many periods ``[start, end]`` (inclusive) touches."""
    first, last = period_start(start, period), period_start(end, period)
    if period == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return (last - first).days // (7 if period == "week" else 1) + 1


def _as_local_date(value: date | datetime, tz: tzinfo) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(tz) if timezone.is_aware(value) else value).date()
    return value


# --- Per exercise -------------------------------------------------------------------


def user_exercise_stats(
    *,
    user: User,
    start: datetime | None = None,
    end: datetime | None = None,
    exercise: str | None = None,
) -> list[dict]:
    """One row per exercise the user performed in ``[start, end)`` (aware instants; open if None).

    Rows: ``exercise``, ``total_reps``, ``sets``, ``sessions``, ``best_set_reps``,
    ``avg_reps_per_set`` (rounded to 0.01), ``first_performed_at``,
    ``last_performed_at``; ordered by exercise name. One aggregate query.
    """
    sets = counted_sets(user=user)
    if start is not None:
        sets = sets.filter(performed_at__gte=start)
    if end is not None:
        sets = sets.filter(performed_at__lt=end)
    if exercise:
        sets = sets.filter(exercise=exercise)
    rows = (
        sets.values("exercise")
        .annotate(
            total_reps=Sum("reps"),
            sets=Count("id"),
            sessions=Count("session", distinct=True),
            best_set_reps=Max("reps"),
            first_performed_at=Min("performed_at"),
            last_performed_at=Max("performed_at"),
        )
        .order_by("exercise")
    )
    out = []
    for row in rows:
        row["avg_reps_per_set"] = round(row["total_reps"] / row["sets"], 2)
        out.append(row)
    return out


# --- Time series --------------------------------------------------------------------


def user_timeseries(
    *,
    user: User,
    period: Period,
    start: date,
    end: date,
    exercise: str | None = None,
) -> list[dict]:
    """Repetitions and sets per local day, ISO week or month, empty periods included.

    Covers every period that touches the local dates ``[start, end]``; each row is
    ``{"start": <first local day of the period>, "reps": int, "sets": int}``, in
    time order. Grouped in the database in the user's time zone. One row per period:
    the caller bounds the span (the API: ``MAX_PERIODS``, and dates that keep the span's
    local midnights inside Python's datetime range).
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}")
    tz = user.tzinfo
    first, stop = period_span(start, end, period)
    sets = counted_sets(user=user).filter(
        performed_at__gte=local_midnight(first, tz), performed_at__lt=local_midnight(stop, tz)
    )
    if exercise:
        sets = sets.filter(exercise=exercise)
    grouped = (
        sets.annotate(bucket=Trunc("performed_at", period, tzinfo=tz))
        .values("bucket")
        .annotate(reps=Sum("reps"), sets=Count("id"))
        .order_by()
    )
    by_start = {_as_local_date(row["bucket"], tz): row for row in grouped}
    out, day = [], first
    while day < stop:
        row = by_start.get(day)
        out.append({"start": day, "reps": row["reps"] if row else 0, "sets": row["sets"] if row else 0})
        day = next_period(day, period)
    return out


# --- Personal records ---------------------------------------------------------------

_RECORD_FIELDS = ("id", "exercise", "reps", "start_s", "end_s", "performed_at", "session_id")


def _best_per_exercise(sets: QuerySet[ExerciseSet], *order_by) -> list[ExerciseSet]:
    """The first set of each exercise under ``order_by`` (ties: earliest performed, then lowest id)."""
    ranked = sets.annotate(
        rank=Window(RowNumber(), partition_by=[F("exercise")], order_by=[*order_by, F("performed_at").asc(), "id"])
    )
    return list(ranked.filter(rank=1).only(*_RECORD_FIELDS).order_by("exercise"))


def _record(kind: str, exercise_set: ExerciseSet, value: float, unit: str) -> dict:
    return {
        "kind": kind,
        "exercise": exercise_set.exercise,
        "value": value,
        "unit": unit,
        "reps": exercise_set.reps,
        "duration_s": round(exercise_set.end_s - exercise_set.start_s, 3),
        "performed_at": exercise_set.performed_at,
        "session": exercise_set.session_id,
        "set": exercise_set.id,
    }


def user_records(*, user: User) -> list[dict]:
    """Personal records with when and in which session, ordered by kind then exercise.

    - ``most_reps`` (per exercise): the set with the most repetitions; value in ``reps``.
    - ``longest_run`` (jump rope): the longest continuous set; value in ``s``.
    - ``fastest_cadence`` (per exercise): the highest repetitions per minute over a
      whole set of at least ``MIN_CADENCE_REPS`` repetitions; value in ``reps/min``. A set
      faster than ``MAX_CADENCE_HZ`` (beyond any human: stored before corrections were
      bounded) is no record.

    Ties go to the set performed first (the record was set then).
    """
    sets = counted_sets(user=user)
    duration = F("end_s") - F("start_s")
    records = [_record("most_reps", s, s.reps, "reps") for s in _best_per_exercise(sets, F("reps").desc())]

    runs = sets.filter(exercise__in=RUN_EXERCISES, end_s__gt=F("start_s")).annotate(duration=duration)
    records += [
        _record("longest_run", s, round(s.end_s - s.start_s, 3), "s")
        for s in _best_per_exercise(runs, F("duration").desc())
    ]

    paced = (
        sets.filter(reps__gte=MIN_CADENCE_REPS, end_s__gt=F("start_s"))
        .annotate(cadence=Cast("reps", FloatField()) * 60.0 / duration)
        .filter(cadence__lte=MAX_CADENCE_HZ * 60.0)
    )
    records += [
        _record("fastest_cadence", s, round(s.reps * 60.0 / (s.end_s - s.start_s), 2), "reps/min")
        for s in _best_per_exercise(paced, F("cadence").desc())
    ]
    return records


# --- Streaks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Streak:
    """A run of consecutive training days (or weeks): ``length`` periods from ``start`` to ``end``."""

    length: int = 0
    start: date | None = None
    end: date | None = None


def _runs(periods: list[date], step: timedelta) -> list[Streak]:
    """Maximal runs of consecutive ``periods`` (sorted, unique), ``step`` apart."""
    runs: list[Streak] = []
    for day in periods:
        if runs and runs[-1].end + step == day:
            runs[-1] = Streak(runs[-1].length + 1, runs[-1].start, day)
        else:
            runs.append(Streak(1, day, day))
    return runs


def _streak_summary(periods: list[date], current_period: date, step: timedelta) -> dict:
    """Current and longest run. The current run may end in this period or the one before
    (a streak is not broken before the day or week is over)."""
    runs = _runs(periods, step)
    longest = max(runs, key=lambda r: r.length, default=Streak())  # first of equal length wins
    current = runs[-1] if runs and runs[-1].end >= current_period - step else Streak()
    return {
        "current": current.length,
        "current_start": current.start,
        "longest": longest.length,
        "longest_start": longest.start,
        "longest_end": longest.end,
        "total": len(periods),
        "last": periods[-1] if periods else None,
    }


def user_training_days(*, user: User) -> list[date]:
    """The local dates (user's time zone) with at least one counted set, ascending."""
    days = (
        counted_sets(user=user)
        .annotate(day=TruncDate("performed_at", tzinfo=user.tzinfo))
        .values_list("day", flat=True)
        .distinct()
    )
    return sorted(days)


def user_streaks(*, user: User, today: date | None = None) -> dict:
    """Current and longest streaks of training days and of training weeks (ISO, Monday).

    ``today`` defaults to the current local date in the user's time zone. Each of
    ``days`` and ``weeks`` holds ``current``, ``current_start``, ``longest``,
    ``longest_start``, ``longest_end``, ``total`` and ``last`` (weeks by their Monday).
    """
    today = today or local_today(tz=user.tzinfo)
    days = user_training_days(user=user)
    weeks = sorted({period_start(d, "week") for d in days})
    return {
        "time_zone": user.time_zone,
        "today": today,
        "days": _streak_summary(days, today, timedelta(days=1)),
        "weeks": _streak_summary(weeks, period_start(today, "week"), timedelta(weeks=1)),
    }
