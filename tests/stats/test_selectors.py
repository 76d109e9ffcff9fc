import datetime as dt
import zoneinfo

import pytest

from fitness.stats import selectors
from fitness.stats.selectors import (
    add_periods,
    count_periods,
    local_day_bounds,
    period_span,
    period_start,
    user_exercise_stats,
    user_records,
    user_streaks,
    user_timeseries,
)
from fitness.workouts import services
from fitness.workouts.models import ExerciseSet, SensorSession
from tests.factories import counted_session as counted

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
UTC = dt.UTC


def local(*args, tz=NEW_YORK) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def set_tz(user, name: str):
    user.time_zone = name
    user.save(update_fields=["time_zone"])
    return user


class TestExerciseStats:
    def test_aggregates_per_exercise_equal_session_totals(self, user, other_user):
        s1 = counted(user, [("squat", 10, 0.0), ("burpee", 4, 60.0), ("squat", 12, 120.0)])
        s2 = counted(user, [("squat", 8, 5.0), ("jump_rope", 50, 200.0)])
        counted(other_user, [("squat", 99, 0.0)])
        counted(user, [("squat", 40, 0.0)], status=SensorSession.Status.PROCESSING)

        rows = {row["exercise"]: row for row in user_exercise_stats(user=user)}
        assert list(rows) == ["burpee", "jump_rope", "squat"]
        squat = rows["squat"]
        assert (squat["total_reps"], squat["sets"], squat["sessions"], squat["best_set_reps"]) == (30, 3, 2, 12)
        assert squat["avg_reps_per_set"] == 10.0
        assert rows["jump_rope"]["total_reps"] == 50
        assert sum(r["total_reps"] for r in rows.values()) == s1.total_reps + s2.total_reps
        squat_sets = ExerciseSet.objects.filter(session__in=[s1, s2], exercise="squat")
        assert squat["last_performed_at"] == max(s.performed_at for s in squat_sets)
        assert squat["first_performed_at"] == min(s.performed_at for s in squat_sets)

    def test_range_is_half_open_and_exercise_filter(self, user):
        counted(user, [("squat", 3, 0.0)], at=local(2024, 3, 3, 23, 59))
        counted(user, [("squat", 5, 0.0), ("sit_up", 7, 30.0)], at=local(2024, 3, 4, 0, 0))
        start, end = local_day_bounds(dt.date(2024, 3, 4), dt.date(2024, 3, 4), NEW_YORK)
        rows = user_exercise_stats(user=user, start=start, end=end)
        assert [(r["exercise"], r["total_reps"]) for r in rows] == [("sit_up", 7), ("squat", 5)]
        rows = user_exercise_stats(user=user, end=start, exercise="squat")
        assert [(r["exercise"], r["total_reps"]) for r in rows] == [("squat", 3)]

    def test_no_sessions_no_rows(self, user):
        assert list(user_exercise_stats(user=user)) == []


class TestCalendar:
    @pytest.mark.parametrize(
        ("day", "period", "start", "after"),
        [
            (dt.date(2024, 3, 3), "day", dt.date(2024, 3, 3), dt.date(2024, 3, 4)),
            (dt.date(2024, 3, 3), "week", dt.date(2024, 2, 26), dt.date(2024, 3, 4)),  # Sunday -> Monday before
            (dt.date(2024, 3, 4), "week", dt.date(2024, 3, 4), dt.date(2024, 3, 11)),
            (dt.date(2024, 2, 29), "month", dt.date(2024, 2, 1), dt.date(2024, 3, 1)),
            (dt.date(2024, 12, 31), "month", dt.date(2024, 12, 1), dt.date(2025, 1, 1)),
        ],
    )
    def test_period_start_and_next(self, day, period, start, after):
        assert period_start(day, period) == start
        assert add_periods(start, period, 1) == after

    def test_add_periods_backwards_and_count(self):
        assert add_periods(dt.date(2024, 1, 1), "month", -13) == dt.date(2022, 12, 1)
        assert count_periods(dt.date(2024, 1, 31), dt.date(2024, 3, 1), "month") == 3
        assert count_periods(dt.date(2024, 3, 3), dt.date(2024, 3, 4), "week") == 2
        assert count_periods(dt.date(2024, 3, 3), dt.date(2024, 3, 3), "day") == 1

    def test_local_day_bounds_follow_dst(self):
        # 2024-03-10 has 23 hours in New York (clocks go forward).
        lower, upper = local_day_bounds(dt.date(2024, 3, 10), dt.date(2024, 3, 10), NEW_YORK)
        assert lower == dt.datetime(2024, 3, 10, 5, tzinfo=UTC)
        assert upper.astimezone(UTC) - lower.astimezone(UTC) == dt.timedelta(hours=23)


class TestTimeseries:
    def test_sets_either_side_of_local_midnight_fall_in_their_local_day_and_week(self, user):
        set_tz(user, "America/New_York")
        # Sunday 23:50 and Monday 00:10 local: the same UTC day (04:50Z, 05:10Z).
        counted(user, [("squat", 4, 0.0)], at=local(2024, 3, 3, 23, 50))
        counted(user, [("squat", 6, 0.0)], at=local(2024, 3, 4, 0, 10))

        days = user_timeseries(user=user, period="day", start=dt.date(2024, 3, 2), end=dt.date(2024, 3, 5))
        assert [(r["start"], r["reps"], r["sets"]) for r in days] == [
            (dt.date(2024, 3, 2), 0, 0),
            (dt.date(2024, 3, 3), 4, 1),
            (dt.date(2024, 3, 4), 6, 1),
            (dt.date(2024, 3, 5), 0, 0),
        ]
        weeks = user_timeseries(user=user, period="week", start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 4))
        assert [(r["start"], r["reps"]) for r in weeks] == [(dt.date(2024, 2, 26), 4), (dt.date(2024, 3, 4), 6)]

        set_tz(user, "UTC")
        days = user_timeseries(user=user, period="day", start=dt.date(2024, 3, 3), end=dt.date(2024, 3, 4))
        assert [(r["start"], r["reps"]) for r in days] == [(dt.date(2024, 3, 3), 0), (dt.date(2024, 3, 4), 10)]

    def test_months_in_local_time(self, user):
        set_tz(user, "Asia/Tokyo")
        tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
        counted(user, [("burpee", 2, 0.0)], at=local(2024, 2, 29, 23, 55, tz=tokyo))
        counted(user, [("burpee", 3, 0.0), ("squat", 9, 10.0)], at=local(2024, 3, 1, 0, 5, tz=tokyo))  # Feb 29 UTC
        months = user_timeseries(user=user, period="month", start=dt.date(2024, 1, 15), end=dt.date(2024, 3, 1))
        assert [(r["start"], r["reps"], r["sets"]) for r in months] == [
            (dt.date(2024, 1, 1), 0, 0),
            (dt.date(2024, 2, 1), 2, 1),
            (dt.date(2024, 3, 1), 12, 2),
        ]
        only = user_timeseries(
            user=user, period="month", start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 1), exercise="burpee"
        )
        assert [(r["start"], r["reps"]) for r in only] == [(dt.date(2024, 3, 1), 3)]

    def test_empty_range_is_all_zero_periods(self, user):
        rows = user_timeseries(user=user, period="week", start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 28))
        assert [r["start"] for r in rows] == [dt.date(2024, 1, d) for d in (1, 8, 15, 22)]
        assert all(r["reps"] == 0 and r["sets"] == 0 for r in rows)

    def test_unknown_period_is_refused(self, user):
        with pytest.raises(ValueError, match="period"):
            user_timeseries(user=user, period="year", start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 1))


class TestRecords:
    def test_records_name_their_set_and_session(self, user, other_user):
        first = counted(user, [("squat", 12, 0.0), ("jump_rope", 40, 100.0)], at=local(2024, 1, 1, 10, 0, tz=UTC))
        # count_result spaces repetitions 2 s apart (1.5 s long): 30 reps/min for every set,
        # so the cadence record is decided by sets whose repetitions are faster.
        second = counted(user, [("squat", 12, 0.0), ("burpee", 3, 50.0)], at=local(2024, 2, 1, 10, 0, tz=UTC))
        counted(other_user, [("squat", 99, 0.0)])
        fast = second.sets.get(exercise="squat")
        ExerciseSet.objects.filter(pk=fast.pk).update(end_s=fast.start_s + 12.0)  # 12 reps in 12 s: 60/min

        records = user_records(user=user)
        by_kind = {(r["kind"], r["exercise"]): r for r in records}
        most = by_kind[("most_reps", "squat")]
        # A tie goes to the set performed first.
        assert (most["value"], most["session"], most["unit"]) == (12, first.pk, "reps")
        assert most["set"] == first.sets.get(exercise="squat").pk
        assert most["performed_at"] == first.sets.get(exercise="squat").performed_at
        assert by_kind[("most_reps", "jump_rope")]["value"] == 40
        run = by_kind[("longest_run", "jump_rope")]
        assert (run["value"], run["unit"], run["reps"]) == (79.5, "s", 40)
        cadence = by_kind[("fastest_cadence", "squat")]
        assert (cadence["value"], cadence["unit"], cadence["session"]) == (60.0, "reps/min", second.pk)
        # Three burpees are too few for a cadence record.
        assert ("fastest_cadence", "burpee") not in by_kind
        assert [r["kind"] for r in records] == sorted(
            (r["kind"] for r in records), key=["most_reps", "longest_run", "fastest_cadence"].index
        )
        assert {r["session"] for r in records} <= {first.pk, second.pk}

    def test_a_set_faster_than_any_human_is_no_cadence_record(self, user):
        """Issue 29, item 6: a 1 ms set of 10,000 repetitions (stored before corrections were
        bounded) gave a "fastest cadence" of 600,000,000 a minute."""
        session = counted(user, [("squat", 12, 0.0), ("squat", 10_000, 100.0)])
        honest, forged = session.sets.order_by("start_s")
        ExerciseSet.objects.filter(pk=forged.pk).update(end_s=forged.start_s + 0.001)

        by_kind = {(r["kind"], r["exercise"]): r for r in user_records(user=user)}
        cadence = by_kind[("fastest_cadence", "squat")]
        assert cadence["set"] == honest.pk
        assert cadence["value"] < 60.0

    def test_no_history_no_records(self, user):
        assert user_records(user=user) == []


class TestStreaks:
    def test_current_and_longest_days_and_weeks(self, user):
        set_tz(user, "America/New_York")
        # Days (local): Jan 1-3 (3), Jan 10, Jan 30-31 + Feb 1 at 23:30 local (= Feb 2 UTC).
        for day in (1, 2, 3, 10, 30, 31):
            counted(user, [("squat", 3, 0.0)], at=local(2024, 1, day, 18, 0))
        counted(user, [("squat", 3, 0.0)], at=local(2024, 2, 1, 23, 30))

        streaks = user_streaks(user=user, today=dt.date(2024, 2, 2))
        days = streaks["days"]
        assert (days["current"], days["current_start"]) == (3, dt.date(2024, 1, 30))
        assert (days["longest"], days["longest_start"], days["longest_end"]) == (
            3,
            dt.date(2024, 1, 1),
            dt.date(2024, 1, 3),
        )
        assert (days["total"], days["last"]) == (7, dt.date(2024, 2, 1))
        # Weeks (Mondays): Jan 1, Jan 8, Jan 29 -> runs of 2 and 1.
        weeks = streaks["weeks"]
        assert (weeks["longest"], weeks["longest_start"], weeks["longest_end"]) == (
            2,
            dt.date(2024, 1, 1),
            dt.date(2024, 1, 8),
        )
        assert (weeks["current"], weeks["current_start"], weeks["total"]) == (1, dt.date(2024, 1, 29), 3)

        # Today not trained yet: the streak still stands; a day later it is broken.
        assert user_streaks(user=user, today=dt.date(2024, 2, 2))["days"]["current"] == 3
        later = user_streaks(user=user, today=dt.date(2024, 2, 3))
        assert later["days"]["current"] == 0
        assert later["days"]["current_start"] is None
        assert later["weeks"]["current"] == 1  # same ISO week
        assert user_streaks(user=user, today=dt.date(2024, 2, 12))["weeks"]["current"] == 0

    def test_no_history(self, user):
        streaks = user_streaks(user=user, today=dt.date(2024, 2, 2))
        assert streaks["days"] == {
            "current": 0,
            "current_start": None,
            "longest": 0,
            "longest_start": None,
            "longest_end": None,
            "total": 0,
            "last": None,
        }
        assert streaks["weeks"]["longest"] == 0


class TestConsistency:
    """Statistics read the sets the services write: no stale or doubled numbers."""

    def test_recount_replaces_and_failure_removes(self, user):
        session = counted(user, [("squat", 10, 0.0)])
        assert user_exercise_stats(user=user)[0]["total_reps"] == 10
        # Re-counted (a reprocess ends here): the new result replaces the old one.
        from tests.factories import count_result

        services.session_save_result(session_id=session.pk, result=count_result([("squat", 7, 0.0)]))
        [row] = user_exercise_stats(user=user)
        assert (row["total_reps"], row["sets"]) == (7, 1)
        services.session_mark_failed(session_id=session.pk, error="bad")
        assert user_exercise_stats(user=user) == []
        assert selectors.user_training_days(user=user) == []


class TestCalendarLimits:
    """Period arithmetic past Python's dates raises ``OverflowError`` (the API refuses such spans)."""

    @pytest.mark.parametrize(
        ("start", "period", "n"),
        [
            (dt.date(9999, 12, 1), "month", 1),
            (dt.date(1, 1, 1), "month", -1),
            (dt.date(9999, 12, 27), "week", 1),
            (dt.date(1, 1, 1), "week", -1),
            (dt.date(9999, 12, 31), "day", 1),
            (dt.date(1, 1, 1), "day", -1),
        ],
    )
    def test_add_periods_past_the_calendar_overflows(self, start, period, n):
        with pytest.raises(OverflowError):
            add_periods(start, period, n)

    def test_period_span(self):
        assert period_span(dt.date(2024, 3, 3), dt.date(2024, 3, 4), "week") == (
            dt.date(2024, 2, 26),
            dt.date(2024, 3, 11),
        )
        assert period_span(dt.date(9999, 1, 15), dt.date(9999, 11, 30), "month") == (
            dt.date(9999, 1, 1),
            dt.date(9999, 12, 1),
        )
        with pytest.raises(OverflowError):
            period_span(dt.date(9999, 1, 15), dt.date(9999, 12, 30), "month")
