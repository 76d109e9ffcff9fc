"""End to end: a webhook on ``session.done`` delivered by a real Celery worker.

A real Exermote recording is uploaded through the API; a worker subprocess (on the configured
broker and the test database, not eager mode) counts it and sends the event to a local HTTP
receiver, which answers 500 first and 200 after. The receiver checks the signature and sees the
same ``delivery_id`` again; the delivery log shows both attempts.

Runs with the default configuration (SQLite file + filesystem broker) and with
``DATABASE_URL``/``CELERY_BROKER_URL`` pointing at PostgreSQL and Redis.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import UserFactory
from tests.fixtures.celery_worker import running_worker, wait_for_counting
from tests.webhooks.conftest import running_receiver

REPO = Path(__file__).resolve().parents[2]
EXERMOTE = (REPO / "../shared/data/exermote").resolve()
RECORDINGS = sorted(EXERMOTE.glob("*.csv")) if EXERMOTE.is_dir() else []
#: Upper bound on the wait for the retried delivery (the worker retries after 0.2 s).
DELIVERY_TIMEOUT_S = 60

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not RECORDINGS, reason=f"no Exermote recordings at {EXERMOTE} (shared data absent)"),
]

#: The worker's webhook settings: loopback receivers allowed, a short backoff, a few attempts.
WORKER_ENV = {
    "FITNESS_WEBHOOKS_ALLOW_PRIVATE": "true",
    "FITNESS_WEBHOOKS_RETRY_BACKOFF_S": "0.2",
    "FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S": "1",
    "FITNESS_WEBHOOKS_MAX_ATTEMPTS": "3",
    "FITNESS_WEBHOOKS_TIMEOUT_S": "5",
}


@pytest.fixture
def worker(transactional_db, settings, tmp_path, monkeypatch):
    """A real Celery worker process with the webhook settings above."""
    settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE = True  # this process checks the URL at subscription
    with running_worker(
        settings=settings, tmp_path=tmp_path, monkeypatch=monkeypatch, prefix="e2e-hooks", env=WORKER_ENV
    ) as proc:
        yield proc


def wait_for_delivered(api, webhook_id: str, worker) -> dict:
    """The newest delivery of the webhook once it is no longer pending (bounded wait)."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while True:
        page = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries/").json()
        if page["results"] and page["results"][0]["status"] != "pending":
            return page["results"][0]
        if worker.poll() is not None:
            pytest.fail(f"the worker died ({worker.returncode}):\n{worker.log_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"delivery still pending after {DELIVERY_TIMEOUT_S} s: {page}\n{worker.log_text()[-4000:]}")
        time.sleep(0.2)


def test_session_done_is_signed_and_retried_after_a_500(worker, client_for):
    api = client_for(UserFactory())
    with running_receiver() as receiver:
        receiver.answers = [500]  # the first POST fails, the retry gets 200

        created = api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["session.done"]}, format="json")
        assert created.status_code == 201, created.content
        hook = created.json()
        secret = hook["secret"]

        path = RECORDINGS[0]
        upload = api.post(
            "/api/v1/sessions/",
            {
                "file": SimpleUploadedFile(path.name, path.read_bytes(), content_type="text/csv"),
                "format": "exermote",
                "started_at": "2017-03-30T18:50:49+02:00",
            },
            format="multipart",
        )
        assert upload.status_code == 202, upload.content
        session_id = upload.json()["id"]

        session = wait_for_counting(api, session_id, worker)
        assert session["status"] == "done", f"{session['error']}\n{worker.log_text()[-4000:]}"
        delivery = wait_for_delivered(api, hook["id"], worker)
        requests = list(receiver.requests)

    # The receiver: two POSTs of the same signed body, the second after the 500.
    assert len(requests) == 2, [r.headers for r in requests]
    for request in requests:
        expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-Signature-256"], expected)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Webhook-Event"] == "session.done"
    assert requests[0].body == requests[1].body
    event = json.loads(requests[0].body)
    assert event == {
        "event": "session.done",
        "session_id": session_id,
        "status": "done",
        "total_reps": session["total_reps"],
        "occurred_at": event["occurred_at"],
        "delivery_id": delivery["id"],
    }
    assert event["occurred_at"], "a done session says when it was counted"
    assert {r.headers["X-Webhook-Delivery"] for r in requests} == {delivery["id"]}

    # The delivery log: one delivery, delivered, with both attempts (oldest first).
    log = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries/").json()
    assert log["count"] == 1
    assert delivery["status"] == "delivered"
    assert delivery["event"] == "session.done"
    assert delivery["session_id"] == session_id
    assert delivery["payload"] == event
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert delivery["attempts"][0]["attempted_at"] <= delivery["attempts"][1]["attempted_at"]
    assert "secret" not in api.get(f"/api/v1/webhooks/{hook['id']}/").json()
