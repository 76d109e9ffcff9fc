"""End to end: upload a real Exermote recording through the API and let a real Celery
worker (a subprocess on the configured broker and the test database) count it.

Runs with the default configuration (SQLite file + filesystem broker) and with
``DATABASE_URL``/``CELERY_BROKER_URL`` pointing at PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from inference.io import Recording, read_recording
from tests.factories import UserFactory
from workers import tasks

REPO = Path(__file__).resolve().parents[2]
DATA = (REPO / "../shared/data").resolve()
EXERMOTE = DATA / "exermote"
RECORDINGS = sorted(EXERMOTE.glob("*.csv")) if EXERMOTE.is_dir() else []

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not RECORDINGS, reason=f"no Exermote recordings at {EXERMOTE} (shared data absent)"),
]

WORKER_READY_TIMEOUT_S = 90
COUNT_TIMEOUT_S = 120


@dataclass
class TrueSet:
    exercise: str
    reps: int
    start_s: float
    end_s: float


def true_sets(rec: Recording) -> list[TrueSet]:
    """Sets from the labels: maximal stretches between ``set_break`` rows; reps = first-half runs."""
    labels = np.asarray(rec.labels)
    set_break = np.asarray(rec.annotations["set_break"], dtype=bool)
    out: list[TrueSet] = []
    i, n = 0, len(labels)
    while i < n:
        if set_break[i]:
            i += 1
            continue
        j = i
        while j < n and not set_break[j]:
            j += 1
        stretch = labels[i:j]
        exercises = {lab.split(".")[0] for lab in stretch if lab != "break"}
        first = np.char.endswith(stretch.astype(str), ".first_half")
        reps = int(first[0]) + int(np.sum(first[1:] & ~first[:-1]))
        if reps:
            assert len(exercises) == 1, f"a set mixes exercises: {exercises}"
            out.append(TrueSet(exercises.pop(), reps, float(rec.time_s[i]), float(rec.time_s[j - 1])))
        i = j
    return out


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


@pytest.fixture
def worker(transactional_db, settings, tmp_path, monkeypatch):
    """A real Celery worker process on the configured broker, the test database and MEDIA_ROOT.

    It consumes a queue of its own, so that another worker on the same broker (``make run``,
    a concurrent test run) cannot take this test's task.
    """
    log_path = tmp_path / "worker.log"
    queue = f"e2e-{uuid.uuid4().hex[:12]}"
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
    log_text = lambda: log_path.read_text(errors="replace")  # noqa: E731
    try:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        while " ready." not in log_text():
            if proc.poll() is not None:
                pytest.fail(f"the worker exited with {proc.returncode}:\n{log_text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the worker was not ready in {WORKER_READY_TIMEOUT_S} s:\n{log_text()[-4000:]}")
            time.sleep(0.2)
        proc.log_text = log_text
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


def test_upload_is_counted_by_a_real_worker(worker, client_for):
    path = RECORDINGS[0]
    raw = path.read_bytes()
    expected = true_sets(read_recording(raw, "exermote"))
    assert expected, "the recording has labelled sets"

    api = client_for(UserFactory())
    resp = api.post(
        "/api/v1/sessions/",
        {"file": SimpleUploadedFile(path.name, raw, content_type="text/csv"), "format": "exermote"},
        format="multipart",
    )
    assert resp.status_code == 202, resp.content
    assert resp.json()["status"] == "queued"

    body = wait_for_counting(api, resp.json()["id"], worker)
    assert body["status"] == "done", f"{body['error']}\n{worker.log_text()[-4000:]}"
    assert body["model_version"]
    got = body["sets"]
    assert body["total_reps"] == sum(s["reps"] for s in got)
    for s in got:
        assert len(s["repetitions"]) == s["reps"]

    summary = f"expected {[(t.exercise, t.reps) for t in expected]}, got {[(s['exercise'], s['reps']) for s in got]}"
    assert len(got) == len(expected), summary
    for true in expected:
        overlaps = [
            (min(true.end_s, s["end_s"]) - max(true.start_s, s["start_s"]), s)
            for s in got
            if s["exercise"] == true.exercise
        ]
        overlap, best = max(overlaps, key=lambda o: o[0], default=(0.0, None))
        assert best is not None, f"no counted {true.exercise} set; {summary}"
        assert overlap > 0, f"no counted {true.exercise} set at {true.start_s:.0f} s; {summary}"
        assert abs(best["reps"] - true.reps) <= 1, f"{true.exercise} at {true.start_s:.0f} s: {summary}"

    stats = api.get("/api/v1/stats/exercises/").json()
    per_exercise = Counter()
    for s in got:
        per_exercise[s["exercise"]] += s["reps"]
    assert {row["exercise"]: row["total_reps"] for row in stats} == dict(per_exercise)
    assert sum(row["total_reps"] for row in stats) == body["total_reps"]
    assert all(row["sessions"] == 1 for row in stats)
