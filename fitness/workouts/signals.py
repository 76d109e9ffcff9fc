"""A deleted session's stored recording and cached plot go once the delete commits, whatever
deleted it: the API, the admin, an account deletion (cascade) or a shell."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import SensorSession
from .plots import forget_plots_on_commit

logger = logging.getLogger(__name__)


@receiver(post_delete, sender=SensorSession, dispatch_uid="workouts.session_files")
def delete_session_files(sender, instance: SensorSession, using: str, **kwargs) -> None:
    forget_plots_on_commit([instance])
    storage, name = instance.file.storage, instance.file.name
    if name:
        transaction.on_commit(lambda: _delete_file(storage, name), using=using)


def _delete_file(storage, name: str) -> None:
    try:
        storage.delete(name)
    except OSError:
        # The orphan sweep (services.storage_sweep) finds it later.
        logger.exception("the stored recording %s of a deleted session could not be removed", name)
