"""What the apps' Celery tasks share."""

from django.db import InterfaceError, OperationalError

#: Database outages are retried; everything about the data itself is handled by the
#: services, which record a failure with its reason instead of raising.
DB_RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 5,
    "retry_backoff_max": 120,
    "max_retries": 5,
}
