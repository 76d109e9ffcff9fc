"""End to end: a slow webhook receiver holds no counting, and a cut attempt is logged and retried.

Real Celery worker subprocesses (prefork: only a pool process applies the task time limits) on
the configured broker and the test database, and a real receiver that dribbles its status line
one byte every 1.5 s (each byte well inside the 5 s read timeout; issue 29, items 1 and 2).
The deadlines are short settings here (an attempt of 2 s, a soft limit of 2 s) to keep the
test quick; production's are 10 s and 30 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from fitness.webhooks import services, tasks
from fitness.webhooks.models import Delivery
from tests.factories import SensorSessionFactory, UserFactory
from tests.fixtures.celery_worker import running_worker, wait_for_counting
from tests.webhooks.conftest import running_dribbler, subscribe

REPO = Path(__file__).resolve().parents[2]
EXERMOTE = (REPO / "../shared/data/exermote").resolve()
RECORDINGS = sorted(EXERMOTE.glob("*.csv")) if EXERMOTE.is_dir() else []
#: "Within a few seconds": a warm worker counts an Exermote session in about 0.2 s; one
#: attempt in front of it adds at most its 2 s deadline. Without the deadline it waited 60 s.
COUNTED_WITHIN_S = 12.0
#: Bound on the wait for a delivery to leave ``pending`` (2 attempts of ~2 s, 0.5 s apart).
SETTLED_WITHIN_S = 60.0

pytestmark = pytest.mark.e2e

BASE_ENV = {
    "FITNESS_WEBHOOKS_ALLOW_PRIVATE": "true",
    "FITNESS_WEBHOOKS_TIMEOUT_S": "5",
    "FITNESS_WEBHOOKS_MAX_ATTEMPTS": "2",
    "FITNESS_WEBHOOKS_RETRY_BACKOFF_S": "0.5",
    "FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S": "1",
}


def upload(api, path: Path):
    resp = api.post(
        "/api/v1/sessions/",
        {
            "file": SimpleUploadedFile(path.name, path.read_bytes(), content_type="text/csv"),
            "format": "exermote",
            "started_at": "2017-03-30T18:50:49+02:00",
        },
        format="multipart",
    )
    assert resp.status_code == 202, resp.content
    return resp.json()["id"]


def counted_in(api, path: Path, worker) -> float:
    """Seconds from the upload to ``done``."""
    started = time.monotonic()
    session = wait_for_counting(api, upload(api, path), worker)
    assert session["status"] == "done", f"{session['error']}\n{worker.log_text()[-4000:]}"
    return time.monotonic() - started


def slow_delivery(user, url: str) -> Delivery:
    """A finished session of ``user`` subscribed to ``url``: its delivery is queued at commit."""
    subscribe(user, url, events=["session.done"])
    session = SensorSessionFactory(user=user, status="done", total_reps=3, finished_at=timezone.now())
    (delivery,) = services.deliveries_create(session=session)
    return delivery


def settled(delivery: Delivery, worker) -> Delivery:
    deadline = time.monotonic() + SETTLED_WITHIN_S
    while True:
        delivery.refresh_from_db()
        if delivery.status != Delivery.Status.PENDING:
            return delivery
        if worker.poll() is not None:
            pytest.fail(f"the worker died ({worker.returncode}):\n{worker.log_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"delivery still pending after {SETTLED_WITHIN_S} s:\n{worker.log_text()[-4000:]}")
        time.sleep(0.2)


def attempts(delivery: Delivery) -> list[tuple[int | None, str, int]]:
    return list(delivery.attempts.order_by("attempted_at", "pk").values_list("status_code", "error", "duration_ms"))


@pytest.mark.skipif(not RECORDINGS, reason=f"no Exermote recordings at {EXERMOTE} (shared data absent)")
def test_another_users_upload_is_counted_while_a_slow_receiver_is_redelivered_to(
    transactional_db, settings, tmp_path, monkeypatch, client_for, record_property
):
    """`make run`'s shape: one worker process, one task at a time, every queue. The attempt's
    deadline bounds how long a delivery holds it; redeliver is refused while one is pending."""
    settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE = True
    env = {**BASE_ENV, "FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S": "2", "FITNESS_WEBHOOKS_SOFT_TIME_LIMIT_S": "20"}
    attacker, normal = UserFactory(), UserFactory()
    attacker_api, normal_api = client_for(attacker), client_for(normal)
    with (
        running_dribbler(interval_s=1.5) as dribbler,
        running_worker(
            settings=settings, tmp_path=tmp_path, monkeypatch=monkeypatch, prefix="e2e-slow", env=env, pool="prefork"
        ) as worker,
    ):
        counted_in(normal_api, RECORDINGS[0], worker)  # warm-up: the pool process loads the model

        delivery = slow_delivery(attacker, dribbler.url)
        redeliver = f"/api/v1/webhooks/{delivery.subscription_id}/deliveries/{delivery.pk}/redeliver/"
        assert attacker_api.post(redeliver).status_code == 409, "pending: one round at a time"
        first_s = counted_in(normal_api, RECORDINGS[1 % len(RECORDINGS)], worker)

        delivery = settled(delivery, worker)
        assert delivery.status == Delivery.Status.FAILED
        log = attempts(delivery)
        assert [(code, error) for code, error, _ in log] == [
            (None, "timed out: no complete answer within the 2 s deadline")
        ] * 2
        assert all(ms < 4000 for _, _, ms in log), log

        assert attacker_api.post(redeliver).status_code == 202
        assert attacker_api.post(redeliver).status_code == 409
        again_s = counted_in(normal_api, RECORDINGS[2 % len(RECORDINGS)], worker)
        delivery = settled(delivery, worker)
        connections = dribbler.connections

    record_property("counted_s", [round(first_s, 2), round(again_s, 2)])  # for docs/reliability.md
    assert first_s < COUNTED_WITHIN_S, f"counted after {first_s:.1f} s behind a slow receiver"
    assert again_s < COUNTED_WITHIN_S, f"counted after {again_s:.1f} s behind a redelivery"
    assert len(attempts(delivery)) == 4
    assert connections == 4


def test_an_attempt_cut_by_the_soft_time_limit_is_logged_and_retried(transactional_db, settings, tmp_path, monkeypatch):
    """A worker on the webhooks queue only, whose soft time limit (2 s) comes before the attempt's
    deadline (30 s): each cut attempt is logged as a timeout and retried, then the delivery fails
    (it stayed ``pending`` for ever, with no attempt logged)."""
    env = {
        **BASE_ENV,
        "FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S": "30",
        "FITNESS_WEBHOOKS_SOFT_TIME_LIMIT_S": "2",
        "FITNESS_WEBHOOKS_TIME_LIMIT_S": "20",
    }
    # The limits travel in the task message from the publisher (this process for the first
    # attempt, the worker for the retries): web and worker share the settings.
    monkeypatch.setattr(tasks.deliver, "soft_time_limit", 2)
    monkeypatch.setattr(tasks.deliver, "time_limit", 20)
    user = UserFactory()
    with (
        running_dribbler(interval_s=1.0) as dribbler,
        running_worker(
            settings=settings,
            tmp_path=tmp_path,
            monkeypatch=monkeypatch,
            prefix="e2e-cut",
            env=env,
            pool="prefork",
            consume=("webhooks",),
        ) as worker,
    ):
        delivery = settled(slow_delivery(user, dribbler.url), worker)
        connections = dribbler.connections
    assert delivery.status == Delivery.Status.FAILED
    log = attempts(delivery)
    assert len(log) == 2, log
    for code, error, ms in log:
        assert code is None
        assert error.startswith("timed out: cut by the task's time limit after"), error
        assert 1500 <= ms < 10000, log
    assert connections == 2
