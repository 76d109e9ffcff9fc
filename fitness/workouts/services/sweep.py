"""The periodic sweep: queue again what a lost message or a lost worker left behind
(see ``FITNESS_SWEEP_*`` in the settings)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import SensorSession
from .queueing import sessions_enqueue

logger = logging.getLogger(__name__)

#: Most sessions one sweep queues again (the next sweep takes the rest).
SWEEP_BATCH = 500


def sessions_requeue_stale(
    *, queued_after_s: float | None = None, processing_after_s: float | None = None
) -> list[str]:
    """Queue again the sessions whose counting task was lost; returns their ids.

    - ``queued`` since more than ``queued_after_s`` (default ``FITNESS_SWEEP_QUEUED_AFTER_S``):
      the task was never published (broker down at upload time) or the broker lost it.
    - ``processing`` since more than ``processing_after_s`` (default
      ``FITNESS_SWEEP_PROCESSING_AFTER_S``, past the hard time limit): its worker died.

    Each goes back to ``queued`` with a new ``queued_at`` and its task is published after
    the commit. A duplicate task is harmless: a ``done`` session is not counted again, and
    a result replaces the previous one. Publishing failures leave the sessions for the next
    sweep. At most ``SWEEP_BATCH`` sessions per call, oldest first.
    """
    if queued_after_s is None:
        queued_after_s = settings.FITNESS_SWEEP_QUEUED_AFTER_S
    if processing_after_s is None:
        processing_after_s = settings.FITNESS_SWEEP_PROCESSING_AFTER_S
    now = timezone.now()
    stale = Q(status=SensorSession.Status.QUEUED, queued_at__lt=now - timedelta(seconds=queued_after_s)) | Q(
        status=SensorSession.Status.PROCESSING, processing_started_at__lt=now - timedelta(seconds=processing_after_s)
    )
    with transaction.atomic():
        rows = (
            SensorSession.objects.select_for_update(skip_locked=True)
            .filter(stale)
            .order_by("queued_at")
            .values_list("pk", "status")[:SWEEP_BATCH]
        )
        found = list(rows)
        ids = [str(pk) for pk, _ in found]
        if not ids:
            return []
        SensorSession.objects.filter(pk__in=ids).update(status=SensorSession.Status.QUEUED, queued_at=now)
        transaction.on_commit(lambda: sessions_enqueue(ids))
    processing = sum(1 for _, status in found if status == SensorSession.Status.PROCESSING)
    logger.warning("sweep: %d stale sessions queued again (%d were processing)", len(ids), processing)
    return ids
