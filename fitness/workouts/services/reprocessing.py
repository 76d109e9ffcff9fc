"""Re-counting past sessions with the production model version (staff: API and admin)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from ..models import SensorSession
from .queueing import sessions_enqueue

logger = logging.getLogger(__name__)

#: Rows per UPDATE when many sessions are reprocessed (SQLite limits query parameters).
REPROCESS_CHUNK = 500


def sessions_reprocess(*, session_ids: Iterable[uuid.UUID | str] | None = None) -> tuple[list[str], list[str]]:
    """Re-count sessions (``None``: all) with the production version, as Celery tasks.

    Sessions that are ``done`` or ``failed`` go back to ``queued``; their old result stays
    until the worker replaces it in one transaction (``session_save_result``), so nothing
    is counted twice and statistics follow. Sessions already queued or processing are
    skipped (they will be counted anyway). Returns ``(queued ids, skipped ids)``; skipped
    lists requested ids only.
    """
    requested = None if session_ids is None else list(dict.fromkeys(str(uuid.UUID(str(s))) for s in session_ids))
    with transaction.atomic():
        rows = SensorSession.objects.select_for_update().filter(
            status__in=[SensorSession.Status.DONE, SensorSession.Status.FAILED]
        )
        if requested is not None:
            rows = rows.filter(pk__in=requested)
        ids = [str(pk) for pk in rows.order_by("created_at").values_list("pk", flat=True)]
        for start in range(0, len(ids), REPROCESS_CHUNK):
            SensorSession.objects.filter(pk__in=ids[start : start + REPROCESS_CHUNK]).update(
                status=SensorSession.Status.QUEUED,
                error="",
                processing_started_at=None,
                finished_at=None,
                queued_at=timezone.now(),
                attempts=0,
            )
        # Sessions whose task cannot be published stay queued; the sweep publishes them later.
        transaction.on_commit(lambda: sessions_enqueue(ids, reprocess=True))
    queued = set(ids)
    skipped = [] if requested is None else [sid for sid in requested if sid not in queued]
    logger.info("reprocessing %d sessions (%d skipped)", len(ids), len(skipped))
    return ids, skipped
