"""A real CaRa jump-rope upload through the API, counted by the real pipeline (peak counter)."""

from pathlib import Path

import pytest

from fitness.workouts import services

CARA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cara"


@pytest.fixture
def rope_file() -> Path:
    files = sorted(CARA.glob("Skippingrope/P2/session-1/*.csv"))
    if not files:
        pytest.skip(f"real CaRa recordings not found at {CARA} (../shared is absent)")
    return files[0]


@pytest.mark.django_db
def test_jump_rope_upload_is_counted_by_peaks_and_shows_in_history_and_stats(api, rope_file):
    true_count = int(rope_file.stem.rsplit("_", 1)[1])
    with rope_file.open("rb") as fh:
        resp = api.post(
            "/api/v1/sessions/", {"file": fh, "format": "cara", "exercise": "jump_rope"}, format="multipart"
        )
    assert resp.status_code == 202, resp.content
    services.session_process(session_id=resp.json()["id"])  # what the worker runs

    detail = api.get(f"/api/v1/sessions/{resp.json()['id']}/").json()
    assert detail["status"] == "done", detail
    assert [s["method"] for s in detail["sets"]] == ["peaks"]
    assert detail["sets"][0]["exercise"] == "jump_rope"
    assert abs(detail["total_reps"] - true_count) <= 1
    assert len(detail["sets"][0]["repetitions"]) == detail["total_reps"]

    stats = {row["exercise"]: row for row in api.get("/api/v1/stats/exercises/").json()}
    assert stats["jump_rope"]["total_reps"] == detail["total_reps"]
    history = api.get("/api/v1/sets/").json()["results"]
    assert [item["repetitions"] for item in history] == [detail["total_reps"]]


@pytest.mark.django_db
def test_smartwatch_upload_without_hint_is_counted_as_unknown_by_peaks(api, rope_file):
    with rope_file.open("rb") as fh:
        resp = api.post("/api/v1/sessions/", {"file": fh, "format": "cara"}, format="multipart")
    services.session_process(session_id=resp.json()["id"])
    detail = api.get(f"/api/v1/sessions/{resp.json()['id']}/").json()
    assert detail["status"] == "done", detail
    assert {s["exercise"] for s in detail["sets"]} <= {"unknown"}
    assert {s["method"] for s in detail["sets"]} <= {"peaks"}
