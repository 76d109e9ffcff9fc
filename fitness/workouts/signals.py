"""Signals of the workouts app.

- A deleted session's stored recording and cached plot go once the delete commits, whatever
  deleted it: the API, the admin, an account deletion (cascade) or a shell.
- A deleted set or repetition leaves a tombstone for sync clients (``services/tombstones.py``),
  whatever deleted it, except an account's own deletion.
- :data:`session_finished` tells apps that build on workouts (webhooks) that a session's
  counting ended, so that workouts imports none of them.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import Signal, receiver

from .models import ExerciseSet, Repetition, SensorSession
from .plots import forget_plots_on_commit

logger = logging.getLogger(__name__)

#: Sent once a session was saved ``done`` or marked ``failed``, after that transaction commits,
#: with ``sender=SensorSession`` and ``session`` (the SensorSession as saved). Sent with
#: ``send_robust``: a receiver's error is logged and never reaches the session. A session counted
#: again (reprocessing) sends it again.
session_finished = Signal()


def send_session_finished_on_commit(session: SensorSession) -> None:
    """Send :data:`session_finished` for ``session`` once the current transaction commits."""
    transaction.on_commit(lambda: _send_session_finished(session), robust=True)


def _send_session_finished(session: SensorSession) -> None:
    # send_robust logs each receiver's exception (logger django.dispatch) and goes on.
    session_finished.send_robust(sender=SensorSession, session=session)


@receiver(pre_delete, sender=ExerciseSet, dispatch_uid="workouts.set_tombstones")
def write_set_tombstones(sender, instance: ExerciseSet, origin=None, **kwargs) -> None:
    """Tombstones for sync clients, on every delete path (see services/tombstones.py)."""
    from .services import tombstones

    tombstones.set_deleting(exercise_set=instance, origin=origin)


@receiver(post_delete, sender=ExerciseSet, dispatch_uid="workouts.set_tombstones_done")
def forget_deleted_set(sender, instance: ExerciseSet, **kwargs) -> None:
    from .services import tombstones

    tombstones.set_deleted(exercise_set=instance)


@receiver(post_delete, sender=Repetition, dispatch_uid="workouts.repetition_tombstones")
def write_repetition_tombstone(sender, instance: Repetition, origin=None, **kwargs) -> None:
    from .services import tombstones

    tombstones.repetition_deleted(repetition=instance, origin=origin)


@receiver(post_delete, sender=SensorSession, dispatch_uid="workouts.session_files")
def delete_session_files(sender, instance: SensorSession, using: str, **kwargs) -> None:
    forget_plots_on_commit([instance])
    storage, name = instance.file.storage, instance.file.name
    if name:
        transaction.on_commit(lambda: _delete_file(storage, name), using=using)


def _delete_file(storage, name: str) -> None:
    try:
        storage.delete(name)
    except Exception:  # OSError locally, botocore's errors on object storage
        # The orphan sweep (services.storage_sweep) finds it later.
        logger.exception("the stored recording %s of a deleted session could not be removed", name)
