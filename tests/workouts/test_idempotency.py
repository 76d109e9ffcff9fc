"""Idempotent uploads: a ``client_id`` makes an upload safe to retry, concurrently too."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from fitness.workouts import services, tasks
from fitness.workouts.models import SensorSession
from tests.conftest import bearer_client
from tests.factories import UserFactory, canonical_csv, count_result

SESSIONS = "/api/v1/sessions/"
CONCURRENT = 8


@pytest.fixture
def queued(monkeypatch) -> list[str]:
    sent: list[str] = []
    lock = threading.Lock()

    def delay(session_id: str) -> None:
        with lock:
            sent.append(session_id)

    monkeypatch.setattr(tasks.process_session, "delay", delay)
    return sent


def post(client, client_id: str, data: bytes | None = None):
    upload = SimpleUploadedFile("rec.csv", data or canonical_csv(), content_type="text/csv")
    return client.post(SESSIONS, {"file": upload, "format": "csv", "client_id": client_id}, format="multipart")


def race(requests: list) -> list:
    """Run the callables at the same moment, each in its own thread (and database connection)."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = requests[i]()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_create_one_session(queued, stored_files):
    user = UserFactory()
    client_id = str(uuid.uuid4())
    clients = [bearer_client(user) for _ in range(CONCURRENT)]
    responses = race([lambda c=c: post(c, client_id) for c in clients])
    assert not [r for r in responses if isinstance(r, Exception)], responses
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (CONCURRENT - 1) + [202], [r.content[:200] for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert SensorSession.objects.count() == 1
    assert len(stored_files()) == 1, "the losers' files are removed"
    assert queued == list(ids), "counting is queued once"


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_different_users_with_one_client_id(queued, stored_files):
    users = [UserFactory() for _ in range(4)]
    client_id = str(uuid.uuid4())
    responses = race([lambda u=u: post(bearer_client(u), client_id) for u in users])
    assert [r.status_code for r in responses] == [202] * 4
    assert len({r.json()["id"] for r in responses}) == 4
    assert SensorSession.objects.filter(client_id=client_id).count() == 4
    assert len(stored_files()) == 4


@pytest.mark.django_db
def test_a_retry_answers_the_current_state_of_the_original(api, user):
    client_id = str(uuid.uuid4())
    first = post(api, client_id)
    assert first.status_code == 202
    services.session_save_result(session_id=first.json()["id"], result=count_result([("squat", 3, 1.0)]))
    retry = post(api, client_id, data=canonical_csv(n_samples=300))
    assert retry.status_code == 200
    body = retry.json()
    assert (body["id"], body["status"], body["total_reps"], body["n_samples"]) == (first.json()["id"], "done", 3, 100)
    assert SensorSession.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_upload_does_not_use_up_its_client_id(api, stored_files):
    client_id = str(uuid.uuid4())
    assert post(api, client_id, data=b"time_s;acc_x\n").status_code == 400
    assert post(api, client_id).status_code == 202
    assert post(api, client_id).status_code == 200
    assert SensorSession.objects.count() == 1
    assert len(stored_files()) == 1
