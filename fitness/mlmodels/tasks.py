"""The registry's Celery task (found by autodiscovery): evaluating a model version.

The name stays ``workers.tasks.*``: it is what queued messages and routes carry.
"""

from celery import shared_task

from fitness.core.tasks import DB_RETRY

from .services import model_version_evaluate


@shared_task(
    name="workers.tasks.evaluate_model_version", acks_late=True, soft_time_limit=1800, time_limit=1900, **DB_RETRY
)
def evaluate_model_version(version_id: int, dataset: dict) -> str | None:
    """Evaluate a model version on labelled recordings; returns the evaluation status."""
    version = model_version_evaluate(version_id=version_id, dataset=dataset)
    return None if version is None else version.evaluation_status
