"""Thin Celery tasks of the workouts app (found by autodiscovery): each calls one service.

Counting tasks are acknowledged late and given back when their worker dies under them
(``CELERY_TASK_ACKS_LATE``, ``reject_on_worker_lost``), so a lost worker's session is
counted by another one; saving a result replaces the previous one, so nothing doubles.
Their soft and hard time limits are ``CELERY_TASK_SOFT_TIME_LIMIT`` and
``CELERY_TASK_TIME_LIMIT``. Beat runs :func:`requeue_stale_sessions` for what a lost
message or a lost worker left behind.

The names stay ``workers.tasks.*``: they are what queued messages, routes and the beat
schedule carry.
"""

import logging

from celery import shared_task

from fitness.core.tasks import DB_RETRY

from . import services
from .models import SensorSession

logger = logging.getLogger(__name__)


@shared_task(name="workers.tasks.process_session", acks_late=True, reject_on_worker_lost=True, **DB_RETRY)
def process_session(session_id: str) -> str | None:
    """Count one uploaded session (id as a string) with the production model; returns its final status.

    A counted session is then counted again in the background by every staging model
    version (shadow evaluation), apart from what the user sees. Routed to the counting queue.
    """
    return _count_session(session_id)


@shared_task(name="workers.tasks.reprocess_session", acks_late=True, reject_on_worker_lost=True, **DB_RETRY)
def reprocess_session(session_id: str) -> str | None:
    """Count a session again (staff's reprocessing): as :func:`process_session`, on the admin
    queue, so that re-counting many sessions never delays a user's upload."""
    return _count_session(session_id)


def _count_session(session_id: str) -> str | None:
    session = services.session_process(session_id=session_id)
    if session is None:
        return None
    if session.status == SensorSession.Status.DONE:
        try:
            services.shadow_queue(session_id=session.pk)
        except Exception:
            # Shadow counting must never fail the user's session.
            logger.exception("session %s: shadow counting could not be queued", session_id)
    return session.status


@shared_task(name="workers.tasks.shadow_count_session", acks_late=True, reject_on_worker_lost=True, **DB_RETRY)
def shadow_count_session(session_id: str, version_id: int) -> bool | None:
    """Count a done session with a staging model version; returns whether it agrees with production."""
    shadow = services.shadow_count(session_id=session_id, version_id=version_id)
    return None if shadow is None else shadow.agrees


@shared_task(name="workers.tasks.requeue_stale_sessions", soft_time_limit=60, time_limit=90)
def requeue_stale_sessions() -> int:
    """The periodic sweep (Celery beat): queue again sessions whose task was lost; returns how many."""
    return len(services.sessions_requeue_stale())


@shared_task(name="workers.tasks.delete_orphan_files", soft_time_limit=300, time_limit=360)
def delete_orphan_files() -> int:
    """The periodic orphan check (Celery beat): stored recordings no session refers to; returns how many went."""
    return len(services.orphan_files_delete())


@shared_task(name="workers.tasks.purge_tombstones", soft_time_limit=300, time_limit=360)
def purge_tombstones() -> int:
    """The daily purge (Celery beat): tombstones past FITNESS_SYNC_TOMBSTONE_DAYS; returns how many went."""
    from fitness.workouts.services.tombstones import tombstones_purge

    return tombstones_purge()
