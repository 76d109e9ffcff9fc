from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Webhook subscriptions, their deliveries and each delivery's attempts."""

    name = "fitness.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 - connects to workouts' session_finished
