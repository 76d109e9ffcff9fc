"""Redis down: uploads are still accepted and stored as ``queued``; once Redis is back
(empty: it keeps nothing on disk) they are counted without anyone doing anything, by a
worker that lived through the outage and the periodic sweep run by its embedded beat."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from fitness.workouts.models import SensorSession
from tests.factories import UserFactory

from .conftest import JUMPING_JACK_SETS
from .test_worker_killed import status, upload, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("redis"),
        reason="runs in the Redis configuration (with a Redis server of its own)",
    ),
]


def test_uploads_during_an_outage_are_counted_when_redis_is_back(
    redis_server, publish_to, start_worker, client_for, stored_files
):
    queue = publish_to(redis_server.url)
    worker = start_worker(
        "survivor",
        broker_url=redis_server.url,
        queue=queue,
        beat=True,
        FITNESS_SWEEP_INTERVAL_S="1",
        FITNESS_SWEEP_QUEUED_AFTER_S="3",
    ).wait_ready()
    api = client_for(UserFactory())
    before = upload(api)
    wait_until(lambda: status(before) == "done", 90, "counting before the outage", worker)

    redis_server.stop()
    during, answered_in = [], []
    for _ in range(3):
        started = time.monotonic()
        during.append(upload(api))  # 202 Accepted, with the broker down
        answered_in.append(time.monotonic() - started)
    assert max(answered_in) < 5, f"uploads waited for the broker: {answered_in}"
    assert len(stored_files()) == 4
    time.sleep(3)
    assert [status(s) for s in during] == ["queued"] * 3

    redis_server.start()
    for session_id in during:
        wait_until(lambda s=session_id: status(s) in ("done", "failed"), 120, "counting after the outage", worker)
    for session_id in [before, *during]:
        body = api.get(f"/api/v1/sessions/{session_id}/").json()
        assert body["status"] == "done", body["error"]
        assert [s["reps"] for s in body["sets"]] == JUMPING_JACK_SETS
        assert worker.log().count(f"session {session_id} done") == 1, f"{session_id} counted more than once"
    assert worker.proc.poll() is None, "the worker lived through the outage"
    assert "stale sessions queued again" in worker.log(), "the sweep queued them"
    assert SensorSession.objects.filter(status="done").count() == 4
