from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    """Metrics kept in the database (written by workers), the ``/metrics`` view, request ids."""

    name = "fitness.observability"
    label = "observability"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import celery_signals  # noqa: F401 - connects Celery's publish and task signals
