"""Thin Celery tasks of the accounts app (found by autodiscovery).

The names stay ``workers.tasks.*`` like every task of the project: they are what queued
messages, routes and the beat schedule carry.
"""

from celery import shared_task
from django.core.management import call_command


@shared_task(name="workers.tasks.flush_expired_tokens", soft_time_limit=300, time_limit=360)
def flush_expired_tokens() -> None:
    """The daily flush (Celery beat): simplejwt's ``flushexpiredtokens`` deletes the outstanding
    refresh tokens past their expiry and their blacklist entries (the blacklist only needs live
    tokens: an expired one is refused anyway), so the tables stop growing with every login."""
    call_command("flushexpiredtokens")
