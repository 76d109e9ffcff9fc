"""Reads for workouts and sensor sessions. Every query is scoped to one user, except the
staff-only shadow summaries the model registry shows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from django.db.models import Count, F, Prefetch, Q, QuerySet

from inference.catalog import catalog_with_methods

from .models import ExerciseSet, Repetition, SensorSession, ShadowResult, Workout

if TYPE_CHECKING:
    from fitness.accounts.models import User
    from fitness.mlmodels.models import ModelVersion
    from inference.spec import ModelSpec

#: The shadow summary of a version that never counted in the shadow.
NO_SHADOW = {"sessions": 0, "agreed": 0, "agreement": None, "errors": 0}


def counting_spec() -> ModelSpec | None:
    """The spec uploads are counted with: the production version's (one query, no network
    loaded), else the shipped model's; None without either."""
    from fitness.mlmodels.selectors import production_spec

    spec = production_spec()
    return spec if spec is not None else _shipped_spec()


@lru_cache(maxsize=1)
def _shipped_spec() -> ModelSpec | None:
    from inference.model import DEFAULT_MODEL_PATH, ModelFileError, read_spec

    try:
        return read_spec(DEFAULT_MODEL_PATH)
    except ModelFileError:
        return None


def exercise_catalog() -> list[dict]:
    """The exercise catalog (:mod:`inference.catalog`), each entry with the method that counts it now:
    ``[{"id", "name", "method", "health_connect_type"}]``, ``unknown`` first, then by id."""
    return catalog_with_methods(counting_spec())


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


def user_sets(*, user: User) -> QuerySet[ExerciseSet]:
    """Every set of the user, whatever its session's status (what a correction looks up)."""
    return ExerciseSet.objects.filter(user=user)


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


def shadow_summaries(versions: Sequence[ModelVersion]) -> dict[int, dict]:
    """``{version pk: {"sessions", "agreed", "agreement", "errors"}}`` of the versions' shadow
    results (one query); versions without any are left out."""
    rows = (
        ShadowResult.objects.filter(model_version__in=[v.pk for v in versions])
        .values("model_version")
        .annotate(
            sessions=Count("id", filter=Q(error="")),
            agreed=Count("id", filter=Q(error="", agrees=True)),
            errors=Count("id", filter=~Q(error="")),
        )
        .order_by()
    )
    return {
        row["model_version"]: {
            "sessions": row["sessions"],
            "agreed": row["agreed"],
            "agreement": row["agreed"] / row["sessions"] if row["sessions"] else None,
            "errors": row["errors"],
        }
        for row in rows
    }


def exemplar_sets(*, user_id: int, exercise: str) -> QuerySet[ExerciseSet]:
    """The user's reviewed sets of ``exercise`` with at least one repetition whose session still has
    its recording, newest first (by when they were done, then reviewed): what an ``auto``
    exemplar is chosen from (fitness/workouts/services/exemplars.py)."""
    return (
        ExerciseSet.objects.filter(user_id=user_id, exercise=exercise, reviewed_at__isnull=False, reps__gt=0)
        .exclude(session__file="")
        .select_related("session")
        .order_by("-performed_at", "-reviewed_at", "-id")
    )
