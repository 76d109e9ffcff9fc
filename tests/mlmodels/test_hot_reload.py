"""Hot reload: a running Celery worker (a real subprocess on the configured broker and the
test database) counts with a version activated through the API from its next task on."""

from __future__ import annotations

import io

import pytest

from fitness.mlmodels.models import ModelVersion, Stage
from tests.factories import UserFactory
from tests.fixtures.celery_worker import running_worker, wait_for_counting

from .conftest import model_channels_csv

pytestmark = pytest.mark.e2e


@pytest.fixture
def worker(transactional_db, settings, tmp_path, monkeypatch):
    """A Celery worker process consuming a queue of its own."""
    with running_worker(settings=settings, tmp_path=tmp_path, monkeypatch=monkeypatch, prefix="hot-reload") as proc:
        yield proc


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
