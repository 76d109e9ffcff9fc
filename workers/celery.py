"""The Celery app. Configured from Django settings, keys prefixed ``CELERY_``.

Tasks live with their app (``fitness/<app>/tasks.py``) and are found by autodiscovery over
``INSTALLED_APPS``. Start a worker with ``celery -A workers worker -l info``.
"""

import logging.config
import os

from celery import Celery
from celery.signals import setup_logging
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fitness.settings")

app = Celery("fitness")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def json_logging(loglevel=None, **kwargs) -> None:
    """The worker logs JSON lines with the request and session ids, as the web does (Django's
    ``LOGGING``; ``-l`` still sets the level)."""
    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


# With LOG_FORMAT=text no receiver is connected, so Celery keeps its own format (any receiver
# of setup_logging stops Celery from configuring logging).
if settings.LOG_FORMAT == "json":
    setup_logging.connect(json_logging, dispatch_uid="workers.json_logging", weak=False)
