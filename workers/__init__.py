"""Celery worker side: the app (``workers.celery``) and thin tasks (``workers.tasks``)."""

from .celery import app

__all__ = ("app",)
