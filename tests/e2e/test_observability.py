"""End to end, as an operator of ``make run`` with ``FITNESS_METRICS_TOKEN=t`` sees it: a real
web process (gunicorn, JSON logs) and a real Celery worker (JSON logs) on the test database.

One upload with ``X-Request-ID`` is counted; then ``GET /metrics`` with the bearer token shows
the counted session and its counting time (and without the token it is refused), and the
request id is on the web's log lines of the upload and on the worker's lines of the counting
and of the session's webhook delivery, with the session id.

Runs with the default configuration (SQLite file + filesystem broker) and with
``DATABASE_URL``/``CELERY_BROKER_URL`` pointing at PostgreSQL and Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import UserFactory
from tests.fixtures.celery_worker import database_url, running_worker, stop
from tests.webhooks.conftest import running_receiver

REPO = Path(__file__).resolve().parents[2]
EXERMOTE = (REPO / "../shared/data/exermote").resolve()
RECORDINGS = sorted(EXERMOTE.glob("*.csv")) if EXERMOTE.is_dir() else []
WEB_READY_TIMEOUT_S = 60
COUNT_TIMEOUT_S = 120
TOKEN = "t"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not RECORDINGS, reason=f"no Exermote recordings at {EXERMOTE} (shared data absent)"),
]


@contextlib.contextmanager
def running_web(*, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """gunicorn (one sync worker) on a free loopback port; yields its base URL."""
    cmd = [
        str(Path(sys.executable).parent / "gunicorn"), "fitness.wsgi:application", "--bind", "127.0.0.1:0",
        "--workers", "1", "--timeout", "60", "--no-control-socket",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + WEB_READY_TIMEOUT_S
        while not (found := re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log_path.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        base = found.group(1)
        while True:  # the worker process boots after the arbiter listens
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{base}/healthz", timeout=5).close()
                break
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn does not answer:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        yield base
    finally:
        stop(proc)


def call(method: str, url: str, *, headers: dict | None = None, body: bytes | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def multipart(fields: dict[str, str], file_name: str, file_bytes: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + file_bytes
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                out.append(record)
    return out


def sample(text: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"{name}{labels} not in /metrics")


@pytest.fixture
def worker(transactional_db, settings, tmp_path, monkeypatch):
    settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE = True
    env = {"LOG_FORMAT": "json", "FITNESS_WEBHOOKS_ALLOW_PRIVATE": "true"}
    with running_worker(
        settings=settings, tmp_path=tmp_path, monkeypatch=monkeypatch, prefix="e2e-obs", env=env
    ) as proc:
        yield proc


def test_a_counted_upload_shows_in_metrics_and_its_request_id_in_both_logs(worker, settings, tmp_path):
    queues = worker.args[worker.args.index("-Q") + 1].split(",")
    web_log = tmp_path / "web.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fitness.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_COUNTING_QUEUE": queues[0],
        "CELERY_ADMIN_QUEUE": queues[1],
        "CELERY_WEBHOOKS_QUEUE": queues[2],
        "FITNESS_METRICS_TOKEN": TOKEN,
        "FITNESS_WEBHOOKS_ALLOW_PRIVATE": "true",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    user = UserFactory()
    auth = {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}
    request_id = f"e2e-{uuid.uuid4()}"

    with running_receiver() as receiver, running_web(env=env, log_path=web_log) as web:
        status, _, body = call(
            "POST",
            f"{web}/api/v1/webhooks/",
            headers={**auth, "Content-Type": "application/json"},
            body=json.dumps({"url": receiver.url, "events": ["session.done"]}).encode(),
        )
        assert status == 201, body

        payload, content_type = multipart({"format": "exermote"}, RECORDINGS[0].name, RECORDINGS[0].read_bytes())
        status, headers, body = call(
            "POST",
            f"{web}/api/v1/sessions/",
            headers={**auth, "Content-Type": content_type, "X-Request-ID": request_id},
            body=payload,
        )
        assert status == 202, body
        assert headers["X-Request-ID"] == request_id
        session_id = json.loads(body)["id"]

        deadline = time.monotonic() + COUNT_TIMEOUT_S
        while True:
            session = json.loads(call("GET", f"{web}/api/v1/sessions/{session_id}/", headers=auth)[2])
            if session["status"] in ("done", "failed") and receiver.requests:
                break
            assert worker.poll() is None, worker.log_text()[-4000:]
            assert time.monotonic() < deadline, f"{session['status']}\n{worker.log_text()[-4000:]}"
            time.sleep(0.3)
        assert session["status"] == "done", session["error"]

        # The scrape: refused without the token (and with a wrong one), the counted session with it.
        assert call("GET", f"{web}/metrics")[0] == 401
        assert call("GET", f"{web}/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
        deadline = time.monotonic() + 30  # the delivery's outcome is recorded when its task ends
        while True:
            status, _, text = call("GET", f"{web}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert status == 200
            text = text.decode()
            if (
                sample(text, "fitness_webhook_deliveries_total", outcome="delivered") >= 1
                or time.monotonic() > deadline
            ):
                break
            time.sleep(0.3)
        method = session["sets"][0]["method"] if session["sets"] else "none"
        method = "generic" if method == "peaks" else method
        assert sample(text, "fitness_sessions_total", status="done", method=method) >= 1
        assert sample(text, "fitness_sessions_total", status="uploaded", method="none") >= 1
        assert sample(text, "fitness_counting_seconds_count", span="upload_to_done") >= 1
        assert sample(text, "fitness_counting_seconds_count", span="worker") >= 1
        assert sample(text, "fitness_webhook_deliveries_total", outcome="delivered") >= 1
        assert sample(text, "fitness_http_requests_total", view="session-list", method="POST", status="2xx") >= 1
        assert sample(text, "fitness_broker_up") == 1
        for queue in queues:
            assert sample(text, "fitness_celery_queue_messages", queue=queue) >= 0

    # The logs: every JSON line about this upload carries its request id, in both processes.
    web_lines = [r for r in json_lines(web_log.read_text()) if r.get("request_id") == request_id]
    assert any(r["message"].startswith(f"session {session_id} queued") for r in web_lines), web_lines
    assert any(r["logger"] == "fitness.requests" and "POST /api/v1/sessions/ 202" in r["message"] for r in web_lines)
    worker_lines = [r for r in json_lines(worker.log_text()) if r.get("request_id") == request_id]
    assert worker_lines, worker.log_text()[-4000:]
    assert all(r["session_id"] == session_id for r in worker_lines), worker_lines
    assert any(r["message"].startswith(f"session {session_id} done") for r in worker_lines), worker_lines
    assert any(r["message"].startswith("webhook delivery") for r in worker_lines), worker_lines
