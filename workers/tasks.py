"""Thin Celery tasks: each loads what it needs and calls one service."""

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from fitness.workouts import services

logger = logging.getLogger(__name__)


@shared_task(
    name="workers.tasks.process_session",
    acks_late=True,
    # Database outages are retried; everything about the recording itself is handled
    # by the service, which marks the session failed instead of raising.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=5,
    soft_time_limit=300,
    time_limit=360,
)
def process_session(session_id: str) -> str | None:
    """Count one uploaded session (id as a string); returns its final status."""
    session = services.session_process(session_id=session_id)
    return session.status if session is not None else None
