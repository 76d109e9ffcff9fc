"""The registry's Celery tasks (found by autodiscovery): validating an uploaded model version (the
full check and its export), exporting one again, evaluating one, and the sweep that queues again
what stayed pending. All run on the admin queue (``FITNESS_TASK_QUEUES``).

The name stays ``workers.tasks.*``: it is what queued messages and routes carry.
"""

from celery import shared_task

from fitness.core.tasks import DB_RETRY

from .services import model_version_evaluate, model_version_export, model_version_validate, model_versions_requeue_stale


@shared_task(
    name="workers.tasks.evaluate_model_version", acks_late=True, soft_time_limit=1800, time_limit=1900, **DB_RETRY
)
def evaluate_model_version(version_id: int, dataset: dict) -> str | None:
    """Evaluate a model version on labelled recordings; returns the evaluation status."""
    version = model_version_evaluate(version_id=version_id, dataset=dataset)
    return None if version is None else version.evaluation_status


@shared_task(name="workers.tasks.export_model_version", acks_late=True, soft_time_limit=900, time_limit=960, **DB_RETRY)
def export_model_version(version_id: int) -> str | None:
    """Export an uploaded model version to ``.onnx`` and store it; returns its ``runtime_status``."""
    version = model_version_export(version_id=version_id)
    return None if version is None else version.runtime_status


@shared_task(
    name="workers.tasks.validate_model_version", acks_late=True, soft_time_limit=900, time_limit=960, **DB_RETRY
)
def validate_model_version(version_id: int) -> str | None:
    """The full check of an uploaded version and its export; returns its ``validation_status``."""
    version = model_version_validate(version_id=version_id)
    return None if version is None else version.validation_status


@shared_task(name="workers.tasks.requeue_stale_model_versions", soft_time_limit=60, time_limit=90)
def requeue_stale_model_versions() -> int:
    """The registry's sweep (Celery beat): queue again validations and exports left pending; returns how many."""
    return len(model_versions_requeue_stale())
