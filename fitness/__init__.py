"""The Django project: accounts, workouts, stats and the model registry."""

# Load the Celery app whenever Django starts, so that tasks queued from web
# requests use the broker configured in settings.
from workers.celery import app as celery_app

__all__ = ("celery_app",)
