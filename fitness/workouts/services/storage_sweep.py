"""The orphan sweep: stored recordings that no session refers to any more.

Every delete path removes a session's file once the delete commits
(``fitness.workouts.signals``); a file can still be left behind when the process dies between
the commit and the removal, or the removal fails. Files younger than ``min_age_s`` are left
alone: an upload stores its file just before its row commits. Works on local files and on
object storage (one paginated listing of the bucket's ``sessions/`` prefix there).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ..models import SensorSession

logger = logging.getLogger(__name__)

#: Where session files live in the storage (``session_upload_to``).
SESSIONS_DIR = "sessions"
#: Names per query when looking up which stored files sessions refer to (SQLite's parameter limit).
_QUERY_CHUNK = 500


def _stored_files(storage) -> list[tuple[str, datetime | None]]:
    """``(name, modified time or None)`` of every stored session file."""
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # django-storages not installed: local files only
        S3Storage = None  # noqa: N806
    if S3Storage is not None and isinstance(storage, S3Storage):
        # One listing (1000 keys a page) with the times, instead of a listdir per user and a HEAD per file.
        location = storage.location.strip("/")
        prefix = f"{location}/" if location else ""
        return [
            (summary.key[len(prefix) :], summary.last_modified)
            for summary in storage.bucket.objects.filter(Prefix=f"{prefix}{SESSIONS_DIR}/")
            if not summary.key.endswith("/")
        ]
    try:
        users, _ = storage.listdir(SESSIONS_DIR)
    except FileNotFoundError:
        return []
    names = []
    for user in users:
        _, files = storage.listdir(f"{SESSIONS_DIR}/{user}")
        names += [(f"{SESSIONS_DIR}/{user}/{name}", None) for name in files]
    return names


def orphan_files_delete(*, min_age_s: float | None = None) -> list[str]:
    """Delete stored session files that no session refers to and that are older than
    ``min_age_s`` (default ``FITNESS_ORPHAN_MIN_AGE_S``); returns their names."""
    if min_age_s is None:
        min_age_s = settings.FITNESS_ORPHAN_MIN_AGE_S
    storage = SensorSession._meta.get_field("file").storage
    stored = _stored_files(storage)
    if not stored:
        return []
    names = [name for name, _ in stored]
    referenced = set()
    for start in range(0, len(names), _QUERY_CHUNK):
        chunk = names[start : start + _QUERY_CHUNK]
        referenced |= set(SensorSession.objects.filter(file__in=chunk).values_list("file", flat=True))
    cutoff = timezone.now() - timedelta(seconds=min_age_s)
    deleted = []
    for name, modified in stored:
        if name in referenced:
            continue
        try:
            if (modified or storage.get_modified_time(name)) > cutoff:
                continue
            storage.delete(name)
        except Exception:  # OSError locally, botocore's errors on object storage
            logger.exception("orphan sweep: %s could not be removed", name)
            continue
        deleted.append(name)
    if deleted:
        logger.warning("orphan sweep: %d stored recordings without a session removed", len(deleted))
    return deleted
