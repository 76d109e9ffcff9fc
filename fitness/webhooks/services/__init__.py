"""Writes for webhooks (views, the signal receiver and the task call these).

- :mod:`.subscriptions`: :func:`subscription_create` checks the URL and makes the secret;
  :func:`subscription_delete`.
- :mod:`.deliveries`: :func:`deliveries_create` makes one delivery per subscription of the
  session's owner to the event and queues each after the transaction commits;
  :func:`delivery_attempt` sends one (the worker); :func:`delivery_redeliver` queues one again
  (never while it is pending).
"""

from .deliveries import (
    DeliveryOutcome,
    DeliveryPendingError,
    deliveries_create,
    delivery_attempt,
    delivery_attempt_cut,
    delivery_give_up,
    delivery_redeliver,
    enqueue_delivery,
    event_body,
    sign,
)
from .subscriptions import SubscriptionError, subscription_create, subscription_delete

__all__ = [
    "DeliveryOutcome",
    "DeliveryPendingError",
    "SubscriptionError",
    "deliveries_create",
    "delivery_attempt",
    "delivery_attempt_cut",
    "delivery_give_up",
    "delivery_redeliver",
    "enqueue_delivery",
    "event_body",
    "sign",
    "subscription_create",
    "subscription_delete",
]
