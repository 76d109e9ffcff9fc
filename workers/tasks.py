"""Thin Celery tasks: each loads what it needs and calls one service.

Counting tasks are acknowledged late and given back when their worker dies under them
(``CELERY_TASK_ACKS_LATE``, ``reject_on_worker_lost``), so a lost worker's session is
counted by another one; saving a result replaces the previous one, so nothing doubles.
Their soft and hard time limits are ``CELERY_TASK_SOFT_TIME_LIMIT`` and
``CELERY_TASK_TIME_LIMIT``. Beat runs :func:`requeue_stale_sessions` for what a lost
message or a lost worker left behind.
"""

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from fitness.mlmodels import services as registry
from fitness.workouts import services
from fitness.workouts.models import SensorSession

logger = logging.getLogger(__name__)

#: Database outages are retried; everything about the data itself is handled by the
#: services, which record a failure with its reason instead of raising.
_DB_RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 5,
    "retry_backoff_max": 120,
    "max_retries": 5,
}


@shared_task(name="workers.tasks.process_session", acks_late=True, reject_on_worker_lost=True, **_DB_RETRY)
def process_session(session_id: str) -> str | None:
    """Count one uploaded session (id as a string) with the production model; returns its final status.

    A counted session is then counted again in the background by every staging model
    version (shadow evaluation), apart from what the user sees.
    """
    session = services.session_process(session_id=session_id)
    if session is None:
        return None
    if session.status == SensorSession.Status.DONE:
        try:
            registry.shadow_queue(session_id=session.pk)
        except Exception:
            # Shadow counting must never fail the user's session.
            logger.exception("session %s: shadow counting could not be queued", session_id)
    return session.status


@shared_task(name="workers.tasks.shadow_count_session", acks_late=True, reject_on_worker_lost=True, **_DB_RETRY)
def shadow_count_session(session_id: str, version_id: int) -> bool | None:
    """Count a done session with a staging model version; returns whether it agrees with production."""
    shadow = registry.shadow_count(session_id=session_id, version_id=version_id)
    return None if shadow is None else shadow.agrees


@shared_task(
    name="workers.tasks.evaluate_model_version", acks_late=True, soft_time_limit=1800, time_limit=1900, **_DB_RETRY
)
def evaluate_model_version(version_id: int, dataset: dict) -> str | None:
    """Evaluate a model version on labelled recordings; returns the evaluation status."""
    version = registry.model_version_evaluate(version_id=version_id, dataset=dataset)
    return None if version is None else version.evaluation_status


@shared_task(name="workers.tasks.requeue_stale_sessions", soft_time_limit=60, time_limit=90)
def requeue_stale_sessions() -> int:
    """The periodic sweep (Celery beat): queue again sessions whose task was lost; returns how many."""
    return len(services.sessions_requeue_stale())
