"""Publishing counting tasks. A session whose task cannot be published stays ``queued``; the
sweep (:mod:`.sweep`) publishes it again later, so an upload never fails because the broker
is down."""

from __future__ import annotations

import logging
import uuid

logger = logging.getLogger(__name__)


def enqueue_processing(session_id: uuid.UUID | str, *, reprocess: bool = False) -> bool:
    """Publish the counting task; False (logged) when the broker cannot be reached.

    ``process_session`` goes to the counting queue; with ``reprocess`` (staff re-counting past
    sessions) ``reprocess_session`` goes to the admin queue instead (``CELERY_TASK_ROUTES``).
    The session stays ``queued`` when publishing fails, and :func:`~.sweep.sessions_requeue_stale`
    publishes it again later: an upload never fails because the broker is down.
    """
    # Imported here: the tasks module imports the services.
    from ..tasks import process_session, reprocess_session

    try:
        (reprocess_session if reprocess else process_session).delay(str(session_id))
    except Exception as exc:  # noqa: BLE001 - any publishing failure leaves the session queued
        logger.warning("session %s stays queued: the task could not be published (%s)", session_id, exc)
        return False
    return True


def sessions_enqueue(session_ids: list[str], *, reprocess: bool = False) -> None:
    """Publish the counting tasks; stops at the first failure (the sweep publishes the rest)."""
    for session_id in session_ids:
        if not enqueue_processing(session_id, reprocess=reprocess):
            return  # the broker is down: the next sweep tries again
