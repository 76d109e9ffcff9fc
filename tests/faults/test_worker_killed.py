"""A worker killed with SIGKILL in the middle of counting: the session is counted by another
worker exactly once (late acknowledgement and redelivery on Redis; the periodic sweep on
any broker), with its sets saved once."""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from fitness.workouts.models import ExerciseSet, Repetition, SensorSession
from tests.factories import UserFactory

from .conftest import JUMPING_JACK_SETS, jumping_jacks_csv

pytestmark = pytest.mark.e2e

ON_REDIS = settings.CELERY_BROKER_URL.startswith("redis")
ON_FILESYSTEM = settings.CELERY_BROKER_URL.startswith("filesystem")


def upload(api) -> str:
    body = {
        "file": SimpleUploadedFile("jacks.csv", jumping_jacks_csv(), "text/csv"),
        "format": "csv",
        "exercise": "jumping_jack",
    }
    resp = api.post("/api/v1/sessions/", body, format="multipart")
    assert resp.status_code == 202, resp.content
    return resp.json()["id"]


def wait_until(predicate, timeout_s: float, what: str, *workers) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.name}:\n{w.log()[-3000:]}" for w in workers)
            pytest.fail(f"{what} did not happen in {timeout_s} s\n{logs}")
        time.sleep(0.3)


def status(session_id: str) -> str:
    return SensorSession.objects.values_list("status", flat=True).get(pk=session_id)


def kill_mid_task(start_worker, api, tmp_path, *, broker_url: str, queue: str):
    """Upload, let a slowed-down worker start counting, SIGKILL it. Returns (session id, worker)."""
    started = tmp_path / "counting-started"
    first = start_worker(
        "first", broker_url=broker_url, queue=queue, FAULT_SLOW_COUNT_S="300", FAULT_STARTED_FILE=str(started)
    ).wait_ready()
    session_id = upload(api)
    wait_until(started.exists, 60, "counting", first)
    assert status(session_id) == "processing"
    first.kill9()
    time.sleep(1)
    assert status(session_id) == "processing", "the killed worker saved nothing"
    return session_id, first


def assert_counted_once(session_id: str, api, second, first) -> None:
    wait_until(lambda: status(session_id) in ("done", "failed"), 120, "counting by the second worker", first, second)
    body = api.get(f"/api/v1/sessions/{session_id}/").json()
    assert body["status"] == "done", body["error"]
    assert [s["reps"] for s in body["sets"]] == JUMPING_JACK_SETS
    assert body["total_reps"] == sum(JUMPING_JACK_SETS)
    session = SensorSession.objects.get(pk=session_id)
    assert session.attempts == 2, "one interrupted run, one complete"
    assert ExerciseSet.objects.filter(session=session).count() == len(JUMPING_JACK_SETS)
    assert Repetition.objects.filter(set__session=session).count() == sum(JUMPING_JACK_SETS)
    assert second.log().count(f"session {session_id} done") == 1
    assert f"session {session_id} done" not in first.log()


@pytest.mark.skipif(not ON_REDIS, reason="redelivery of unacknowledged tasks is a Redis feature (Redis config)")
def test_killed_worker_task_is_redelivered_to_another_worker(
    redis_server, publish_to, start_worker, client_for, tmp_path
):
    queue = publish_to(redis_server.url)
    api = client_for(UserFactory())
    session_id, first = kill_mid_task(start_worker, api, tmp_path, broker_url=redis_server.url, queue=queue)
    # Unacknowledged tasks come back after the visibility timeout (shortened here; in
    # production it exceeds the longest task), found by the next worker on the broker.
    redelivery = {"visibility_timeout": 3, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}
    second = start_worker(
        "second", broker_url=redis_server.url, queue=queue, CELERY_BROKER_TRANSPORT_OPTIONS=json.dumps(redelivery)
    ).wait_ready()
    assert_counted_once(session_id, api, second, first)


@pytest.mark.skipif(not ON_FILESYSTEM, reason="runs in the default configuration (the Redis run checks redelivery)")
def test_killed_worker_task_is_queued_again_by_the_sweep(publish_to, start_worker, client_for, tmp_path):
    """The filesystem broker loses a message whose worker died; the sweep finds the session."""
    queue = publish_to()
    api = client_for(UserFactory())
    broker_url = settings.CELERY_BROKER_URL
    session_id, first = kill_mid_task(start_worker, api, tmp_path, broker_url=broker_url, queue=queue)
    second = start_worker(
        "second",
        broker_url=broker_url,
        queue=queue,
        beat=True,
        FITNESS_SWEEP_INTERVAL_S="1",
        FITNESS_SWEEP_PROCESSING_AFTER_S="2",
    ).wait_ready()
    assert_counted_once(session_id, api, second, first)
    assert "stale sessions queued again (1 were processing)" in second.log()


@pytest.mark.skipif(not ON_FILESYSTEM, reason="runs in the default configuration (once is enough)")
def test_a_task_over_the_soft_time_limit_fails_the_session_with_the_reason(
    publish_to, start_worker, client_for, tmp_path, monkeypatch
):
    """The prefork pool enforces the time limits (`make run` and compose use it; solo would not)."""
    from fitness.workouts import tasks

    queue = publish_to()
    # The limits travel in the task message from the publisher (web and worker share the settings).
    monkeypatch.setattr(tasks.process_session, "soft_time_limit", 2)
    monkeypatch.setattr(tasks.process_session, "time_limit", 10)
    worker = start_worker(
        "limited",
        broker_url=settings.CELERY_BROKER_URL,
        queue=queue,
        pool="prefork",
        FAULT_SLOW_COUNT_S="60",
        FAULT_STARTED_FILE=str(tmp_path / "started"),
        CELERY_TASK_SOFT_TIME_LIMIT="2",
        CELERY_TASK_TIME_LIMIT="10",
    ).wait_ready()
    session_id = upload(client_for(UserFactory()))
    wait_until(lambda: status(session_id) in ("done", "failed"), 60, "the time limit", worker)
    session = SensorSession.objects.get(pk=session_id)
    assert (session.status, session.error) == ("failed", "counting took longer than the time limit (2 s)")
    assert not ExerciseSet.objects.filter(session=session).exists()
