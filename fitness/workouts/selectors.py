"""Reads for workouts and sensor sessions. Every query is scoped to one user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Prefetch, QuerySet

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
