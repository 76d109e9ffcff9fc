"""Deliveries start from workouts' ``session_finished`` signal; the account export gets the
user's subscriptions from accounts' ``account_export`` signal (both connected in ``apps.ready``)."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from fitness.accounts.signals import account_export
from fitness.workouts.models import SensorSession
from fitness.workouts.signals import session_finished

from . import selectors, services

logger = logging.getLogger(__name__)


@receiver(session_finished, sender=SensorSession, dispatch_uid="webhooks.session_finished")
def queue_session_webhooks(sender, session: SensorSession, **kwargs) -> None:
    """Queue the webhooks of a session that is done or failed; never raises (the session is saved)."""
    try:
        services.deliveries_create(session=session)
    except Exception:
        logger.exception("session %s: its webhooks could not be queued", session.pk)


@receiver(account_export, dispatch_uid="webhooks.account_export")
def export_subscriptions(sender, user, **kwargs) -> dict:
    """The account export's ``webhooks`` section: the user's subscriptions without their secrets."""
    return {"webhooks": selectors.subscription_export(user=user)}
