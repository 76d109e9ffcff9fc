"""End to end: upload a real Exermote recording through the API and let a real Celery
worker (a subprocess on the configured broker and the test database) count it.

Runs with the default configuration (SQLite file + filesystem broker) and with
``DATABASE_URL``/``CELERY_BROKER_URL`` pointing at PostgreSQL and Redis.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inference.io import Recording, read_recording
from tests.factories import UserFactory
from tests.fixtures.celery_worker import running_worker, wait_for_counting

REPO = Path(__file__).resolve().parents[2]
DATA = (REPO / "../shared/data").resolve()
EXERMOTE = DATA / "exermote"
RECORDINGS = sorted(EXERMOTE.glob("*.csv")) if EXERMOTE.is_dir() else []

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not RECORDINGS, reason=f"no Exermote recordings at {EXERMOTE} (shared data absent)"),
]


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


@pytest.fixture
def worker(transactional_db, settings, tmp_path, monkeypatch):
    """A real Celery worker process on the configured broker and the test database."""
    with running_worker(settings=settings, tmp_path=tmp_path, monkeypatch=monkeypatch, prefix="e2e") as proc:
        yield proc


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
