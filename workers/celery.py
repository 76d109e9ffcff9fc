"""The Celery app. Configured from Django settings, keys prefixed ``CELERY_``.

Tasks live with their app (``fitness/<app>/tasks.py``) and are found by autodiscovery over
``INSTALLED_APPS``. Start a worker with ``celery -A workers worker -l info``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fitness.settings")

app = Celery("fitness")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
