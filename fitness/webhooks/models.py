"""Webhook subscriptions, their deliveries (one per event and subscription) and each delivery's
attempts (the delivery log)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

#: Longest subscription URL accepted.
URL_MAX_LENGTH = 2048
#: Longest error text kept for one attempt.
ERROR_MAX_LENGTH = 500


class Event(models.TextChoices):
    SESSION_DONE = "session.done", "A session was counted"
    SESSION_FAILED = "session.failed", "A session could not be counted"


#: The event a session's final status sends.
EVENT_OF_STATUS = {"done": Event.SESSION_DONE, "failed": Event.SESSION_FAILED}
#: The session statuses an event reports.
FINISHED_STATUS_CHOICES = [(status, status) for status in EVENT_OF_STATUS]


class Subscription(models.Model):
    """A user's URL and the events it is sent. ``secret`` signs each delivery (HMAC-SHA256), so
    it is kept as it is; the API shows it only in the answer that created the subscription."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_subscriptions")
    url = models.CharField(max_length=URL_MAX_LENGTH)
    #: A list of :class:`Event` values.
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"Webhook {self.pk} of {self.user_id}: {self.url}"


class Delivery(models.Model):
    """One event for one subscription. Its ``payload`` is fixed when the event happens, so retries
    and redeliveries send the same body (and ``delivery_id``: receivers can drop duplicates)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # queued, being sent, or waiting for a retry
        DELIVERED = "delivered", "Delivered"  # a 2xx answer
        FAILED = "failed", "Failed"  # out of attempts, or the URL was refused

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=Event.choices)
    #: The session the event is about (no foreign key: the log outlives a deleted session).
    session_id = models.UUIDField()
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    #: When it was last queued or attempted: a ``pending`` delivery quiet for longer than any
    #: retry waits lost its task (broker outage, a killed worker) and may be redelivered.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["subscription", "-created_at"])]

    def __str__(self) -> str:
        return f"Delivery {self.pk} ({self.event}, {self.status})"


class DeliveryAttempt(models.Model):
    """One POST of a delivery: the answer's status code, or why there was none."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    #: The HTTP status code of the answer; null when none came (timeout, refused, ...).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=ERROR_MAX_LENGTH, blank=True, default="")
    duration_ms = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["delivery", "attempted_at"])]

    def __str__(self) -> str:
        return f"Attempt of {self.delivery_id} at {self.attempted_at}: {self.status_code or self.error}"
