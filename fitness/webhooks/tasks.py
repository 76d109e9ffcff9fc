"""The webhook delivery task (found by autodiscovery): one attempt per run, retried by Celery.

It runs on its own queue (``CELERY_WEBHOOKS_QUEUE``), so a slow receiver never holds a counting
or an admin worker. A delivery is tried up to ``FITNESS_WEBHOOKS_MAX_ATTEMPTS`` times: after a
non-2xx answer, a timeout (the attempt's deadline, or the task's soft time limit) or a
connection error it is retried ``FITNESS_WEBHOOKS_RETRY_BACKOFF_S`` seconds later, doubling each
time (at most ``FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S``). A URL refused at delivery time (its host
now resolves to a private address) is not retried.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from celery.exceptions import Retry, SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


def retry_countdown(retries: int) -> float:
    """Seconds before the retry that follows ``retries`` earlier retries (0 for the first)."""
    base = settings.FITNESS_WEBHOOKS_RETRY_BACKOFF_S
    return min(base * 2**retries, settings.FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S)


@shared_task(
    bind=True,
    name="webhooks.deliver",
    soft_time_limit=settings.FITNESS_WEBHOOKS_SOFT_TIME_LIMIT_S,
    time_limit=settings.FITNESS_WEBHOOKS_TIME_LIMIT_S,
)
def deliver(self, delivery_id: str) -> str | None:
    """Send one webhook delivery (id as a string); returns its status, None if it is gone."""
    from . import services

    max_attempts = max(1, settings.FITNESS_WEBHOOKS_MAX_ATTEMPTS)
    last = self.request.retries + 1 >= max_attempts
    attempted_at, started = timezone.now(), time.monotonic()
    try:
        outcome = services.delivery_attempt(delivery_id=delivery_id, last=last)
    except SoftTimeLimitExceeded:
        # Cut outside the network wait (which logs the cut itself): log it here, then retry.
        duration_s = time.monotonic() - started
        services.delivery_attempt_cut(delivery_id=delivery_id, last=last, attempted_at=attempted_at,
                                      duration_s=duration_s)  # fmt: skip
        retryable, delivered = True, False
    else:
        if outcome is None:
            return None
        retryable, delivered = outcome.retryable, outcome.delivered
    if delivered:
        return "delivered"
    if not retryable or last:
        return "failed"
    try:
        raise self.retry(countdown=retry_countdown(self.request.retries), max_retries=max_attempts - 1)
    except Retry:
        raise
    except Exception as exc:  # noqa: BLE001 - the retry could not be published
        services.delivery_give_up(delivery_id=delivery_id, reason=f"its retry could not be queued ({exc})")
        return "failed"
