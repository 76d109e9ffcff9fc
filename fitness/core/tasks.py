"""What the apps' Celery tasks share."""

from django.db import InterfaceError, OperationalError

from .storage import StorageUnavailable

#: Database and object-store outages are retried; everything about the data itself is handled
#: by the services, which record a failure with its reason instead of raising.
DB_RETRY = {
    "autoretry_for": (OperationalError, InterfaceError, StorageUnavailable),
    "retry_backoff": 5,
    "retry_backoff_max": 120,
    "max_retries": 5,
}
