"""The orphan sweep: stored recordings that no session refers to any more.

Every delete path removes a session's file once the delete commits
(``fitness.workouts.signals``); a file can still be left behind when the process dies between
the commit and the removal, or the removal fails. Files younger than ``min_age_s`` are left
alone: an upload stores its file just before its row commits.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from ..models import SensorSession

logger = logging.getLogger(__name__)

#: Where session files live in the storage (``session_upload_to``).
SESSIONS_DIR = "sessions"


def _stored_names(storage) -> list[str]:
    try:
        users, _ = storage.listdir(SESSIONS_DIR)
    except FileNotFoundError:
        return []
    names = []
    for user in users:
        _, files = storage.listdir(f"{SESSIONS_DIR}/{user}")
        names += [f"{SESSIONS_DIR}/{user}/{name}" for name in files]
    return names


def orphan_files_delete(*, min_age_s: float | None = None) -> list[str]:
    """Delete stored session files that no session refers to and that are older than
    ``min_age_s`` (default ``FITNESS_ORPHAN_MIN_AGE_S``); returns their names."""
    if min_age_s is None:
        min_age_s = settings.FITNESS_ORPHAN_MIN_AGE_S
    storage = SensorSession._meta.get_field("file").storage
    stored = _stored_names(storage)
    if not stored:
        return []
    referenced = set(SensorSession.objects.filter(file__in=stored).values_list("file", flat=True))
    cutoff = timezone.now() - timedelta(seconds=min_age_s)
    deleted = []
    for name in stored:
        if name in referenced:
            continue
        try:
            if storage.get_modified_time(name) > cutoff:
                continue
            storage.delete(name)
        except OSError:
            logger.exception("orphan sweep: %s could not be removed", name)
            continue
        deleted.append(name)
    if deleted:
        logger.warning("orphan sweep: %d stored recordings without a session removed", len(deleted))
    return deleted
