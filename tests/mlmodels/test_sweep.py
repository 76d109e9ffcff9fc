"""The registry's sweep (Celery beat: ``workers.tasks.requeue_stale_model_versions``): a validation or
an export left pending longer than ``FITNESS_SWEEP_MODEL_PENDING_AFTER_S`` (its message or its worker
was lost) is queued again, once; what was queued recently is not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from fitness.mlmodels import tasks
from fitness.mlmodels.models import ModelVersion

pytestmark = pytest.mark.django_db

URL = "/api/v1/model-versions/"


def upload(client, model) -> int:
    resp = client.post(URL, {"file": SimpleUploadedFile("model.keras", model.data)}, format="multipart")
    assert resp.status_code == 202, resp.content
    return resp.json()["id"]


def age(pk: int, seconds: float | None) -> None:
    """Pretend the version's task was queued ``seconds`` ago (None: never)."""
    queued = None if seconds is None else timezone.now() - timedelta(seconds=seconds)
    ModelVersion.objects.filter(pk=pk).update(task_queued_at=queued)


def test_the_beat_runs_the_sweep_on_the_admin_queue():
    entry = django_settings.CELERY_BEAT_SCHEDULE["requeue-stale-model-versions"]
    assert entry["task"] == "workers.tasks.requeue_stale_model_versions"
    assert django_settings.FITNESS_TASK_QUEUES[entry["task"]] == django_settings.CELERY_ADMIN_QUEUE


def test_a_validation_left_pending_is_queued_again_and_ends_valid_a_fresh_one_is_not(
    staff_api, model_files, eager_tasks, django_capture_on_commit_callbacks, settings
):
    # Uploaded inside the test's transaction: their tasks were never published (a lost message).
    lost, fresh = upload(staff_api, model_files["a"]), upload(staff_api, model_files["b"])
    age(lost, settings.FITNESS_SWEEP_MODEL_PENDING_AFTER_S + 60)

    with django_capture_on_commit_callbacks(execute=True):  # the eager worker runs what the sweep queues
        assert tasks.requeue_stale_model_versions() == 1

    lost_version, fresh_version = ModelVersion.objects.get(pk=lost), ModelVersion.objects.get(pk=fresh)
    assert (lost_version.validation_status, lost_version.runtime_status) == ("valid", "ready")
    assert fresh_version.validation_status == "pending"
    assert staff_api.post(f"{URL}{lost}/activate/", format="json").status_code == 200


def test_what_the_sweep_queued_is_not_queued_twice_and_a_pending_export_is_queued_again(
    staff_api, model_files, register, monkeypatch, django_capture_on_commit_callbacks, settings
):
    sent = []
    monkeypatch.setattr(tasks.validate_model_version, "delay", lambda *args: sent.append(("validate", *args)))
    monkeypatch.setattr(tasks.export_model_version, "delay", lambda *args: sent.append(("export", *args)))
    pending = upload(staff_api, model_files["a"])
    exporting = register(model_files["b"]).pk  # valid, its export pending
    never = register(model_files["silent"]).pk  # registered before exports existed: never queued
    age(pending, settings.FITNESS_SWEEP_MODEL_PENDING_AFTER_S + 60)
    age(exporting, settings.FITNESS_SWEEP_MODEL_PENDING_AFTER_S + 60)
    age(never, None)
    assert ModelVersion.objects.get(pk=exporting).runtime_status == "pending"

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.requeue_stale_model_versions() == 3
    assert sorted(sent) == sorted([("validate", pending), ("export", exporting), ("export", never)])

    # The next sweeps (every minute) leave them to the tasks just queued.
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.requeue_stale_model_versions() == 0
    assert sent == []
    # A failed export or an invalid file is not pending: not queued again either.
    ModelVersion.objects.filter(pk=exporting).update(runtime_export={"error": "the converter failed"})
    ModelVersion.objects.filter(pk=pending).update(validation_status="invalid", validation_error="no")
    age(pending, 10 * settings.FITNESS_SWEEP_MODEL_PENDING_AFTER_S)
    age(exporting, 10 * settings.FITNESS_SWEEP_MODEL_PENDING_AFTER_S)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.requeue_stale_model_versions() == 0
    assert sent == []
