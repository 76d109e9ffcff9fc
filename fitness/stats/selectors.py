"""Per-user aggregates over counted sets (reads only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, Max, QuerySet, Sum

from fitness.workouts.models import ExerciseSet, SensorSession

if TYPE_CHECKING:
    from fitness.accounts.models import User


def user_exercise_stats(*, user: User) -> QuerySet:
    """One row per exercise the user performed, over the user's ``done`` sessions.

    Rows are dicts: ``exercise``, ``total_reps``, ``sets``, ``sessions``,
    ``best_set_reps``, ``last_performed_at``; ordered by exercise name.
    Aggregated in the database.
    """
    return (
        ExerciseSet.objects.filter(user=user, session__status=SensorSession.Status.DONE)
        .values("exercise")
        .annotate(
            total_reps=Sum("reps"),
            sets=Count("id"),
            sessions=Count("session", distinct=True),
            best_set_reps=Max("reps"),
            last_performed_at=Max("performed_at"),
        )
        .order_by("exercise")
    )
