"""Deliveries: one per event and subscription, sent by the ``webhooks.deliver`` task.

The body is the event as compact JSON with sorted keys (the same bytes for every attempt);
``X-Signature-256: sha256=<hex>`` is its HMAC-SHA256 with the subscription's secret. The URL
is checked again before each attempt (:mod:`..addresses`) and each attempt is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, timedelta
from functools import partial
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import addresses, transport
from ..models import ERROR_MAX_LENGTH, EVENT_OF_STATUS, Delivery, DeliveryAttempt, Subscription

if TYPE_CHECKING:
    from fitness.workouts.models import SensorSession

logger = logging.getLogger(__name__)

USER_AGENT = "fitness-webhooks/1"


class DeliveryPendingError(Exception):
    """The delivery is already pending (queued, being sent or waiting for a retry)."""


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt came to: ``delivered`` (2xx), else whether another try may help."""

    attempt: DeliveryAttempt
    delivered: bool
    retryable: bool


def event_body(payload: dict) -> bytes:
    """The bytes POSTed (and signed) for an event."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, body: bytes) -> str:
    """The ``X-Signature-256`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body`` with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _occurred_at(session: SensorSession) -> str | None:
    when = session.finished_at
    return None if when is None else when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def deliveries_create(*, session: SensorSession) -> list[Delivery]:
    """A delivery for each subscription of the session's owner to the event of its status
    (``done`` -> ``session.done``, ``failed`` -> ``session.failed``), queued after commit."""
    event = EVENT_OF_STATUS.get(session.status)
    if event is None:
        return []
    subscriptions = [s for s in Subscription.objects.filter(user_id=session.user_id) if event in s.events]
    if not subscriptions:
        return []
    with transaction.atomic():
        deliveries = []
        for subscription in subscriptions:
            delivery_id = uuid.uuid4()
            payload = {
                "event": str(event),
                "session_id": str(session.pk),
                "status": session.status,
                "total_reps": session.total_reps,
                "occurred_at": _occurred_at(session),
                "delivery_id": str(delivery_id),
            }
            deliveries.append(
                Delivery(id=delivery_id, subscription=subscription, event=event, session_id=session.pk, payload=payload)
            )
        Delivery.objects.bulk_create(deliveries)
        for delivery in deliveries:
            transaction.on_commit(partial(enqueue_delivery, delivery.pk))
    return deliveries


def enqueue_delivery(delivery_id: uuid.UUID | str) -> bool:
    """Publish the delivery task; False (logged) when the broker cannot be reached (the delivery
    stays ``pending``; once quiet for :func:`pending_stale_after_s`, redelivering it queues it again)."""
    from ..tasks import deliver  # the tasks module imports the services

    try:
        deliver.delay(str(delivery_id))
    except Exception as exc:  # noqa: BLE001 - a session's end must never fail for its webhooks
        logger.warning("webhook delivery %s stays pending: the task could not be published (%s)", delivery_id, exc)
        return False
    return True


def delivery_attempt(*, delivery_id: uuid.UUID | str, last: bool) -> DeliveryOutcome | None:
    """POST the delivery once and log the attempt; None if the delivery (or its subscription) is gone.

    The attempt has ``FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S`` in all; one cut by the task's soft
    time limit is logged like a timeout. The delivery becomes ``delivered`` on a 2xx answer,
    ``failed`` when the URL is now refused or this was the ``last`` attempt, else stays
    ``pending`` (the task retries it).
    """
    delivery = Delivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    if delivery is None:
        logger.info("webhook delivery %s no longer exists; nothing to send", delivery_id)
        return None
    subscription = delivery.subscription
    body = event_body(delivery.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Signature-256": sign(subscription.secret, body),
        "X-Webhook-Event": delivery.event,
        "X-Webhook-Delivery": str(delivery.pk),
    }
    attempted_at, started = timezone.now(), time.monotonic()
    status_code, error, retryable = None, "", True
    try:
        target = addresses.resolve(subscription.url, allow_private=settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE)
        status_code = transport.post(
            target,
            body=body,
            headers=headers,
            timeout_s=settings.FITNESS_WEBHOOKS_TIMEOUT_S,
            deadline_s=settings.FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S,
        )
    except addresses.URLError as exc:
        error, retryable = exc.message, exc.transient
        if not exc.transient:
            error = f"refused: {error}"
    except transport.TransportError as exc:
        error = str(exc)
    except SoftTimeLimitExceeded:
        error = f"timed out: cut by the task's time limit after {time.monotonic() - started:.1f} s"
    return _log_attempt(
        delivery=delivery,
        attempted_at=attempted_at,
        duration_s=time.monotonic() - started,
        status_code=status_code,
        error=error,
        retryable=retryable,
        last=last,
    )


def delivery_attempt_cut(*, delivery_id: uuid.UUID | str, last: bool, attempted_at, duration_s: float) -> None:
    """Log an attempt that the task's soft time limit cut outside the network wait (e.g. waiting
    for a database lock): a retryable timeout, as :func:`delivery_attempt` logs one."""
    delivery = Delivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    if delivery is None:
        return
    _log_attempt(
        delivery=delivery,
        attempted_at=attempted_at,
        duration_s=duration_s,
        status_code=None,
        error=f"timed out: cut by the task's time limit after {duration_s:.1f} s",
        retryable=True,
        last=last,
    )


def _log_attempt(
    *,
    delivery: Delivery,
    attempted_at,
    duration_s: float,
    status_code: int | None,
    error: str,
    retryable: bool,
    last: bool,
) -> DeliveryOutcome:
    duration_ms = round(duration_s * 1000)
    delivered = status_code is not None and 200 <= status_code < 300
    if delivered:
        status = Delivery.Status.DELIVERED
    elif last or not retryable:
        status = Delivery.Status.FAILED
    else:
        status = Delivery.Status.PENDING
    with transaction.atomic():
        attempt = DeliveryAttempt.objects.create(
            delivery=delivery,
            attempted_at=attempted_at,
            status_code=status_code,
            error=error[:ERROR_MAX_LENGTH],
            duration_ms=duration_ms,
        )
        Delivery.objects.filter(pk=delivery.pk).update(status=status, updated_at=timezone.now())
    log = logger.info if delivered else logger.warning
    url = delivery.subscription.url
    log("webhook delivery %s to %s: %s (%d ms)", delivery.pk, url, status_code or error, duration_ms)
    return DeliveryOutcome(attempt=attempt, delivered=delivered, retryable=retryable and not delivered)


def delivery_give_up(*, delivery_id: uuid.UUID | str, reason: str) -> None:
    """Mark a pending delivery ``failed`` (its retry could not be queued), with the reason logged."""
    logger.error("webhook delivery %s failed: %s", delivery_id, reason)
    Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED, updated_at=timezone.now()
    )


def pending_stale_after_s() -> float:
    """Seconds after which a quiet ``pending`` delivery has lost its task: longer than the longest
    wait for a retry plus the task's hard time limit."""
    return settings.FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S + settings.FITNESS_WEBHOOKS_TIME_LIMIT_S + 60.0


def delivery_redeliver(*, delivery: Delivery) -> Delivery:
    """Send the delivery again (same body and id), with a fresh set of attempts, after commit.

    At most one round per delivery at a time: raises :class:`DeliveryPendingError` while it is
    ``pending``, unless it has been quiet for :func:`pending_stale_after_s` (its task was lost).
    The check and the change are one conditional UPDATE, so concurrent calls queue it once.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=pending_stale_after_s())
    claimed = (
        Delivery.objects.filter(pk=delivery.pk)
        .filter(~Q(status=Delivery.Status.PENDING) | Q(updated_at__lt=stale))
        .update(status=Delivery.Status.PENDING, updated_at=now)
    )
    if not claimed:
        raise DeliveryPendingError("this delivery is already pending; redeliver it once it is delivered or failed")
    delivery.status, delivery.updated_at = Delivery.Status.PENDING, now
    transaction.on_commit(partial(enqueue_delivery, delivery.pk))
    return delivery
