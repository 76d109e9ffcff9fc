"""Tombstones: what sync clients learn about deleted sets and repetitions (``DeletedRow``).

Written from the delete signals (``fitness.workouts.signals``), so every delete path writes them
in the deleting transaction: the API's session delete, reprocessing replacing sets, a failed
re-count, a correction that removes a set, the Django admin, a shell's ``QuerySet.delete()``.
(Django sends ``pre_delete``/``post_delete`` per row once a model has receivers: it then never
fast-deletes its rows.) An account's own deletion writes none: its tombstones would go with it.
"""

from __future__ import annotations

import contextvars
import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from ..models import DeletedRow, ExerciseSet, Repetition

#: Sets being deleted now whose repetitions' tombstones were written with the set's (one query
#: per set instead of one per repetition).
_SETS_BEING_DELETED: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "sets_being_deleted", default=frozenset()
)


def _account_deletion(origin) -> bool:
    return isinstance(origin, get_user_model())


def set_deleting(*, exercise_set: ExerciseSet, origin) -> None:
    """Before a set is deleted: tombstones for it and its repetitions (deleted with it)."""
    if _account_deletion(origin):
        return
    now = timezone.now()
    rep_ids = Repetition.objects.filter(set_id=exercise_set.pk).values_list("id", flat=True)
    DeletedRow.objects.bulk_create(
        [DeletedRow(user_id=exercise_set.user_id, kind=DeletedRow.Kind.SET, row_id=exercise_set.pk, deleted_at=now)]
        + [
            DeletedRow(user_id=exercise_set.user_id, kind=DeletedRow.Kind.REPETITION, row_id=pk, deleted_at=now)
            for pk in rep_ids
        ]
    )
    _SETS_BEING_DELETED.set(_SETS_BEING_DELETED.get() | {exercise_set.pk})


def set_deleted(*, exercise_set: ExerciseSet) -> None:
    _SETS_BEING_DELETED.set(_SETS_BEING_DELETED.get() - {exercise_set.pk})


def repetition_deleted(*, repetition: Repetition, origin) -> None:
    """After a repetition is deleted on its own (not with its set): its tombstone."""
    if _account_deletion(origin) or repetition.set_id in _SETS_BEING_DELETED.get():
        return
    user_id = ExerciseSet.objects.filter(pk=repetition.set_id).values_list("user_id", flat=True).first()
    if user_id is not None:
        DeletedRow.objects.create(user_id=user_id, kind=DeletedRow.Kind.REPETITION, row_id=repetition.pk)


def tombstones_purge(*, now: dt.datetime | None = None) -> int:
    """Delete tombstones older than ``FITNESS_SYNC_TOMBSTONE_DAYS``; returns how many. A client
    whose cursor is older than that is told to resync in full (410)."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.FITNESS_SYNC_TOMBSTONE_DAYS)
    deleted, _ = DeletedRow.objects.filter(deleted_at__lt=cutoff).delete()
    return deleted
