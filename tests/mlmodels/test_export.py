"""The ``.onnx`` export of an uploaded version, made after the upload by the validation task on the
admin queue (fitness/mlmodels/services/validation.py; again by the export task,
fitness/mlmodels/services/export.py): the upload answers before it, workers count with the
``.keras`` until it is stored, a failure is recorded with its reason."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fitness.mlmodels import services, tasks
from fitness.mlmodels.models import ModelVersion, RuntimeStatus
from fitness.mlmodels.runtime import load_version_model
from fitness.workouts import services as workout_services
from inference.export import TOLERANCE
from inference.io import read_recording
from tests.test_queues import filesystem_connection

from .conftest import model_channels_csv

# The model check itself is under test: every check runs its child (no result reused).
pytestmark = [pytest.mark.django_db, pytest.mark.real_model_check]

URL = "/api/v1/model-versions/"


def upload(client, model):
    return client.post(URL, {"file": SimpleUploadedFile("model.keras", model.data)}, format="multipart")


@pytest.fixture
def broker(tmp_path, monkeypatch):
    """Kombu's filesystem transport in ``tmp_path``; the registry's tasks publish to it (routed by
    the settings' ``CELERY_TASK_ROUTES``, as in production)."""
    with filesystem_connection(tmp_path) as conn:
        for task in (tasks.export_model_version, tasks.validate_model_version):
            monkeypatch.setattr(task, "_exec_options", None, raising=False)  # routing cached by an earlier test
            monkeypatch.setattr(task, "delay", lambda *args, task=task: task.apply_async(args, connection=conn))
        yield conn


def waiting(conn, queue: str) -> list[tuple[str, list]]:
    """``(task name, args)`` of the messages waiting on ``queue`` (consumed)."""
    found = []
    with conn.SimpleQueue(queue) as simple:
        while True:
            try:
                message = simple.get(block=False)
            except simple.Empty:
                return found
            found.append((message.headers["task"], message.payload[0]))
            message.ack()


def test_the_upload_answers_without_an_export_and_queues_its_validation_on_the_admin_queue_after_commit(
    staff_api, model_files, stored_files, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        resp = upload(staff_api, model_files["a"])
        assert resp.status_code == 202, resp.content
        assert waiting(broker, "admin") == [], "nothing is queued before the commit"
    body = resp.json()
    assert (body["runtime_status"], body["runtime_error"]) == ("pending", "")
    assert (body["runtime_checksum"], body["runtime_export"]) == ("", {})
    version = ModelVersion.objects.get()
    assert [p.name for p in stored_files()] == [f"{version.checksum}.keras"]

    for callback in callbacks:  # the commit
        callback()
    # One task checks the file and makes its export (TensorFlow loads once).
    assert waiting(broker, "admin") == [("workers.tasks.validate_model_version", [version.pk])]
    assert waiting(broker, "counting") == []


def test_the_task_stores_a_checked_export_and_a_second_run_does_nothing(
    staff_api, model_files, stored_files, eager_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    with django_capture_on_commit_callbacks(execute=True):  # the task runs in-process after the commit
        resp = upload(staff_api, model_files["a"])
    assert resp.status_code == 202, resp.content
    assert resp.json()["runtime_status"] == "pending"  # answered before the export

    version = ModelVersion.objects.get()
    body = staff_api.get(f"{URL}{version.pk}/").json()
    assert (body["validation_status"], body["validation_error"]) == ("valid", "")
    assert (body["runtime_status"], body["runtime_error"]) == ("ready", "")
    onnx = next(p for p in stored_files() if p.suffix == ".onnx")
    assert onnx.name == f"{version.runtime_checksum}.onnx"
    assert body["runtime_checksum"] == version.runtime_checksum == hashlib.sha256(onnx.read_bytes()).hexdigest()
    record = body["runtime_export"]
    assert record["source_sha256"] == version.checksum
    assert 0.0 <= record["max_abs_diff"] <= record["tolerance"] == TOLERANCE
    # Workers load the export now, not the .keras.
    assert load_version_model(version).checksum == version.runtime_checksum

    # A second run (a redelivered message, staff asking again) leaves it as it is.
    def no_export(*args, **kwargs):
        raise AssertionError("a version with an export was exported again")

    monkeypatch.setattr(services.export, "export_model_file", no_export)
    before = (
        sorted(stored_files()),
        ModelVersion.objects.values("runtime_file", "runtime_checksum", "runtime_export")[0],
    )
    assert tasks.export_model_version.delay(version.pk).get() == "ready"
    assert (
        sorted(stored_files()),
        ModelVersion.objects.values("runtime_file", "runtime_checksum", "runtime_export")[0],
    ) == before


def test_a_failed_export_is_failed_with_the_reason_and_workers_count_with_the_keras(
    register, model_files, staff_api, stored_files, monkeypatch, tmp_path
):
    # The converter writes something ONNX Runtime refuses. The export runs in a child process
    # (inference.model_check): a sitecustomize on its PYTHONPATH replaces the converter there.
    (tmp_path / "sitecustomize.py").write_text(
        "import inference.export\n"
        "inference.export._convert = lambda network, spec, path, opset: path.write_bytes(b'no')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    version = register(model_files["a"], stage="production")
    services.model_version_export(version_id=version.pk)

    version.refresh_from_db()
    assert version.runtime_status == RuntimeStatus.FAILED
    assert "ONNX Runtime cannot load the export" in version.runtime_error
    assert (version.runtime_file.name, version.runtime_checksum) == ("", "")
    body = staff_api.get(f"{URL}{version.pk}/").json()
    assert body["runtime_status"] == "failed"
    assert "ONNX Runtime cannot load the export" in body["runtime_error"]
    assert [p.suffix for p in stored_files()] == [".keras"]
    # Workers count with the version's .keras meanwhile.
    assert load_version_model(version).checksum == version.checksum
    recording = read_recording(model_channels_csv(), "csv")
    assert workout_services.run_pipeline(recording, exercise=None).model_version == "tiny-a"


def test_a_missing_keras_fails_the_export_with_the_reason(register, model_files):
    version = register(model_files["a"])
    version.file.delete(save=False)
    services.model_version_export(version_id=version.pk)
    version.refresh_from_db()
    assert (version.runtime_status, version.runtime_error) == ("failed", "the stored .keras is missing")


def test_an_export_of_a_version_that_is_gone_does_nothing():
    assert services.model_version_export(version_id=123456) is None
