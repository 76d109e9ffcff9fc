"""Reads for webhooks, each scoped to one user (through the subscription)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db.models import Prefetch, QuerySet

from .models import Delivery, DeliveryAttempt, Subscription

if TYPE_CHECKING:
    from fitness.accounts.models import User


def subscription_list(*, user: User) -> QuerySet[Subscription]:
    """The user's subscriptions, newest first."""
    return Subscription.objects.filter(user=user).order_by("-created_at", "-pk")


def delivery_list(*, subscription: Subscription) -> QuerySet[Delivery]:
    """The subscription's delivery log, newest first, each with its attempts (oldest first)."""
    attempts = DeliveryAttempt.objects.order_by("attempted_at", "pk")
    return (
        Delivery.objects.filter(subscription=subscription)
        .order_by("-created_at", "-pk")
        .prefetch_related(Prefetch("attempts", queryset=attempts))
    )


def delivery_get(*, subscription: Subscription, delivery_id: str) -> Delivery | None:
    """One delivery of the subscription; None for another's, an unknown id or one that is no UUID."""
    try:
        pk = uuid.UUID(str(delivery_id))
    except ValueError:
        return None
    return delivery_list(subscription=subscription).filter(pk=pk).first()


#: What the account export says of each subscription: never its secret.
EXPORT_FIELDS = ("id", "url", "events", "created_at")


def subscription_export(*, user: User) -> list[dict]:
    """The user's subscriptions for the account export, newest first:
    ``[{"id": UUID, "url": str, "events": [str], "created_at": datetime}]`` (no ``secret``)."""
    return list(subscription_list(user=user).values(*EXPORT_FIELDS))
