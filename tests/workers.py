"""Real Celery worker subprocesses for tests: on the configured broker, the test database
and the test's MEDIA_ROOT, each consuming a queue of its own so that no other worker on
the same broker (``make run``, a concurrent test run) can take the test's tasks."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from workers import tasks

REPO = Path(__file__).resolve().parents[1]
WORKER_READY_TIMEOUT_S = 90
COUNT_TIMEOUT_S = 120


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database the tests run on (after pytest-django created it)."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        name = str(settings_dict["NAME"])
        assert ":memory:" not in name, "the e2e worker needs a file database"
        assert "mode=memory" not in name, "the e2e worker needs a file database"
        return f"sqlite:///{Path(name).resolve()}"
    if engine.endswith("postgresql"):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "localhost"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
    pytest.skip(f"e2e test does not know how to share a {engine} database with a worker")
    return ""


def celery_command() -> list[str]:
    exe = Path(sys.executable).parent / "celery"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "celery"]


@contextlib.contextmanager
def running_worker(*, settings, tmp_path: Path, monkeypatch, prefix: str) -> Iterator[subprocess.Popen]:
    """Start a solo-pool worker on a queue ``<prefix>-<random>`` and route ``process_session``
    to it; wait until it is ready; stop it on exit. ``proc.log_text()`` returns its log."""
    log_path = tmp_path / "worker.log"
    queue = f"{prefix}-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(tasks.process_session, "queue", queue, raising=False)
    # Celery caches a task's routing options on first use: drop the cache so the queue applies.
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


def wait_for_counting(client, session_id: str, worker) -> dict:
    deadline = time.monotonic() + COUNT_TIMEOUT_S
    while True:
        body = client.get(f"/api/v1/sessions/{session_id}/").json()
        if body["status"] in ("done", "failed"):
            return body
        if worker.poll() is not None:
            pytest.fail(f"the worker died ({worker.returncode}):\n{worker.log_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"session still {body['status']} after {COUNT_TIMEOUT_S} s:\n{worker.log_text()[-4000:]}")
        time.sleep(0.5)
