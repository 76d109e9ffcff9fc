"""Hot reload: a running Celery worker (a real subprocess on the configured broker and the
test database) counts with a version activated through the API from its next task on."""

from __future__ import annotations

import io
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from fitness.mlmodels.models import ModelVersion, Stage
from tests.e2e.test_upload_count import celery_command, database_url, wait_for_counting
from tests.factories import UserFactory
from workers import tasks

from .conftest import model_channels_csv

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WORKER_READY_TIMEOUT_S = 90


@pytest.fixture
def worker(transactional_db, settings, tmp_path, monkeypatch):
    """A Celery worker process consuming a queue of its own (see tests/e2e for the pattern)."""
    log_path = tmp_path / "worker.log"
    queue = f"hot-reload-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(tasks.process_session, "queue", queue, raising=False)
    # Routing options are cached on a task's first apply_async: recompute them with this queue.
    monkeypatch.setattr(tasks.process_session, "_exec_options", None, raising=False)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fitness.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [
        *celery_command(), "-A", "workers", "worker", "--pool=solo", "-l", "info",
        "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log_text = lambda: log_path.read_text(errors="replace")
    try:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        while " ready." not in proc.log_text():
            if proc.poll() is not None:
                pytest.fail(f"the worker exited with {proc.returncode}:\n{proc.log_text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the worker was not ready in {WORKER_READY_TIMEOUT_S} s:\n{proc.log_text()[-4000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_activated_version_counts_the_next_session_without_a_restart(
    worker, client_for, staff_api, register, model_files
):
    a = register(model_files["a"], stage="production")
    b = register(model_files["b"])
    api = client_for(UserFactory())

    def count() -> dict:
        resp = api.post(
            "/api/v1/sessions/", {"file": io.BytesIO(model_channels_csv()), "format": "csv"}, format="multipart"
        )
        assert resp.status_code == 202, resp.content
        body = wait_for_counting(api, resp.json()["id"], worker)
        assert body["status"] == "done", f"{body['error']}\n{worker.log_text()[-4000:]}"
        return body

    assert count()["model_version"] == "tiny-a"

    assert staff_api.post(f"/api/v1/model-versions/{b.pk}/activate/", format="json").status_code == 200
    assert count()["model_version"] == "tiny-b"

    # The rollback reaches the same worker too.
    assert staff_api.post(f"/api/v1/model-versions/{a.pk}/activate/", format="json").status_code == 200
    assert count()["model_version"] == "tiny-a"

    assert worker.poll() is None, "the worker was never restarted"
    assert ModelVersion.objects.get(stage=Stage.PRODUCTION) == a
