"""The Celery app. Configured from Django settings, keys prefixed ``CELERY_``.

Start a worker with ``celery -A workers worker -l info``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fitness.settings")

app = Celery("fitness", include=["workers.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
# Task modules of the Django apps (``<app>/tasks.py``), if any.
app.autodiscover_tasks()
