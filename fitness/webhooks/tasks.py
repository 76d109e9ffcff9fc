"""The webhook delivery task (found by autodiscovery): one attempt per run, retried by Celery.

A delivery is tried up to ``FITNESS_WEBHOOKS_MAX_ATTEMPTS`` times: after a non-2xx answer, a
timeout or a connection error it is retried ``FITNESS_WEBHOOKS_RETRY_BACKOFF_S`` seconds later,
doubling each time (at most ``FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S``). A URL refused at
delivery time (its host now resolves to a private address) is not retried.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import Retry
from django.conf import settings

logger = logging.getLogger(__name__)


def retry_countdown(retries: int) -> float:
    """Seconds before the retry that follows ``retries`` earlier retries (0 for the first)."""
    base = settings.FITNESS_WEBHOOKS_RETRY_BACKOFF_S
    return min(base * 2**retries, settings.FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S)


@shared_task(bind=True, name="webhooks.deliver", soft_time_limit=60, time_limit=90)
def deliver(self, delivery_id: str) -> str | None:
    """Send one webhook delivery (id as a string); returns its status, None if it is gone."""
    from . import services

    max_attempts = max(1, settings.FITNESS_WEBHOOKS_MAX_ATTEMPTS)
    last = self.request.retries + 1 >= max_attempts
    outcome = services.delivery_attempt(delivery_id=delivery_id, last=last)
    if outcome is None:
        return None
    if outcome.delivered:
        return "delivered"
    if not outcome.retryable or last:
        return "failed"
    try:
        raise self.retry(countdown=retry_countdown(self.request.retries), max_retries=max_attempts - 1)
    except Retry:
        raise
    except Exception as exc:  # noqa: BLE001 - the retry could not be published
        services.delivery_give_up(delivery_id=delivery_id, reason=f"its retry could not be queued ({exc})")
        return "failed"
