"""Reads for workouts and sensor sessions. Every query is scoped to one user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import F, Prefetch, QuerySet

from .models import ExerciseSet, Repetition, SensorSession, Workout

if TYPE_CHECKING:
    from fitness.accounts.models import User


def workout_list(*, user: User) -> QuerySet[Workout]:
    return Workout.objects.filter(user=user).prefetch_related("sessions")


def session_list(*, user: User, with_repetitions: bool = False) -> QuerySet[SensorSession]:
    """The user's sessions, newest first, with sets (and repetitions) prefetched."""
    sets = ExerciseSet.objects.order_by("index")
    if with_repetitions:
        sets = sets.prefetch_related(Prefetch("repetitions", queryset=Repetition.objects.order_by("index")))
    return SensorSession.objects.filter(user=user).prefetch_related(Prefetch("sets", queryset=sets))


def counted_sets(*, user: User) -> QuerySet[ExerciseSet]:
    """The user's sets in counted (``done``) sessions: what history and statistics read.

    Sets of a session that is being (re)counted or has failed are not part of it. They
    are left out through the user's few sessions that are not ``done`` (a small hashed
    ``NOT IN`` on a partial index) rather than by joining every set to its session.
    """
    return ExerciseSet.objects.filter(user=user).exclude(session__in=_sessions_not_done(user=user))


def _sessions_not_done(*, user: User) -> QuerySet:
    return SensorSession.objects.filter(user=user).exclude(status=SensorSession.Status.DONE).values("pk")


def set_history(*, user: User) -> QuerySet[ExerciseSet]:
    """The user's counted sets for the history/sync endpoint (ordering left to the pagination)."""
    return counted_sets(user=user).order_by()


def repetition_history(*, user: User) -> QuerySet[Repetition]:
    """The user's repetitions in counted sessions, each with its set; ``performed_at`` is the set's."""
    return (
        Repetition.objects.filter(set__user=user)
        .exclude(set__session__in=_sessions_not_done(user=user))
        .select_related("set")
        .annotate(performed_at=F("set__performed_at"))
        .order_by()
    )
