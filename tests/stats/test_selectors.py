import pytest

from fitness.stats.selectors import user_exercise_stats
from fitness.workouts import services
from fitness.workouts.models import ExerciseSet, SensorSession
from tests.factories import SensorSessionFactory, count_result

pytestmark = pytest.mark.django_db


def counted(user, spec, status=SensorSession.Status.DONE):
    session = SensorSessionFactory(user=user)
    services.session_save_result(session_id=session.pk, result=count_result(spec))
    if status != SensorSession.Status.DONE:
        SensorSession.objects.filter(pk=session.pk).update(status=status)
    session.refresh_from_db()
    return session


def test_aggregates_per_exercise_equal_session_totals(user, other_user):
    s1 = counted(user, [("squat", 10, 0.0), ("burpee", 4, 60.0), ("squat", 12, 120.0)])
    s2 = counted(user, [("squat", 8, 5.0), ("jump_rope", 50, 200.0)])
    counted(other_user, [("squat", 99, 0.0)])
    counted(user, [("squat", 40, 0.0)], status=SensorSession.Status.PROCESSING)

    rows = {row["exercise"]: row for row in user_exercise_stats(user=user)}
    assert list(rows) == ["burpee", "jump_rope", "squat"]
    squat = rows["squat"]
    assert (squat["total_reps"], squat["sets"], squat["sessions"], squat["best_set_reps"]) == (30, 3, 2, 12)
    assert rows["jump_rope"]["total_reps"] == 50
    assert sum(r["total_reps"] for r in rows.values()) == s1.total_reps + s2.total_reps
    squat_sets = ExerciseSet.objects.filter(session__in=[s1, s2], exercise="squat")
    assert squat["last_performed_at"] == max(s.performed_at for s in squat_sets)


def test_no_sessions_no_rows(user):
    assert list(user_exercise_stats(user=user)) == []
