"""Making and removing webhook subscriptions."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from .. import addresses
from ..models import Event, Subscription

if TYPE_CHECKING:
    from fitness.accounts.models import User


class SubscriptionError(ValueError):
    """A subscription that cannot be made; ``field`` names the input at fault (for a 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def subscription_create(*, user: User, url: str, events: Sequence[str]) -> Subscription:
    """A new subscription of ``user`` with a new random secret.

    The URL must be http(s) and its host resolve, now, to public addresses only (unless
    ``FITNESS_WEBHOOKS_ALLOW_PRIVATE``); a user has at most ``FITNESS_WEBHOOKS_MAX_PER_USER``, also
    under concurrent creations.
    Raises :class:`SubscriptionError`.
    """
    chosen = list(dict.fromkeys(events))
    unknown = [e for e in chosen if e not in Event.values]
    if not chosen or unknown:
        raise SubscriptionError("events", f"choose from {', '.join(Event.values)}")
    try:
        addresses.resolve(url, allow_private=settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE)
    except addresses.URLError as exc:
        raise SubscriptionError("url", exc.message) from exc
    limit = settings.FITNESS_WEBHOOKS_MAX_PER_USER
    with transaction.atomic():
        # Count and insert under a lock of the user's row (PostgreSQL; SQLite's write transactions
        # take the database lock when they begin: settings' IMMEDIATE mode), so that concurrent
        # creations cannot all see room for one more.
        list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        if Subscription.objects.filter(user=user).count() >= limit:
            raise SubscriptionError("non_field_errors", f"a user has at most {limit} webhooks; delete one first")
        return Subscription.objects.create(user=user, url=url, events=chosen, secret=secrets.token_hex(32))


def subscription_delete(*, subscription: Subscription) -> None:
    """Remove the subscription and its delivery log; its queued deliveries are not sent."""
    subscription.delete()
