"""Writes for workouts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..models import Workout

if TYPE_CHECKING:
    from fitness.accounts.models import User


def workout_create(*, user: User, date, notes: str = "") -> Workout:
    return Workout.objects.create(user=user, date=date, notes=notes)


def workout_update(*, workout: Workout, **fields) -> Workout:
    for name in ("date", "notes"):
        if name in fields:
            setattr(workout, name, fields[name])
    workout.save(update_fields=[n for n in ("date", "notes") if n in fields] or None)
    return workout
