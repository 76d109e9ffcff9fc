"""End to end (issue 28): a reviewed set as the learned counter's exemplar, through the API and a real
Celery worker (a subprocess on the configured broker and the test database) counting with a real
learned counter file (``learned_counter``; skipped without one).

Upload a steady push-up recording, correct its set to a third of what the counter said, upload
the same movement again (``exemplar: auto``) and re-count an older session with the set named: the
counts follow the user's set, and the counted sets name it. Another user's set is refused.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.factories import UserFactory, rhythmic_csv
from tests.fixtures.celery_worker import running_worker, wait_for_counting

pytestmark = pytest.mark.e2e


@pytest.fixture
def worker(transactional_db, settings, tmp_path, monkeypatch, learned_counter):
    env = {"FITNESS_LEARNED_COUNTER_PATH": str(learned_counter)}
    with running_worker(settings=settings, tmp_path=tmp_path, monkeypatch=monkeypatch, prefix="e2e-ex", env=env) as p:
        yield p


def upload(api, **fields):
    data = {"file": SimpleUploadedFile("rec.csv", rhythmic_csv(), content_type="text/csv"), "format": "csv"}
    return api.post("/api/v1/sessions/", {**data, "exercise": "push_up", **fields}, format="multipart")


def counted(api, worker, **fields) -> dict:
    resp = upload(api, **fields)
    assert resp.status_code == 202, resp.content
    body = wait_for_counting(api, resp.json()["id"], worker)
    assert body["status"] == "done", f"{body['error']}\n{worker.log_text()[-4000:]}"
    return body


def test_a_reviewed_set_is_the_exemplar_of_later_counts(worker, client_for, settings):
    settings.FITNESS_SYNC_LAG_S = 0.0
    api = client_for(UserFactory())
    older = counted(api, worker, exemplar="none")
    first = counted(api, worker)
    (plain,) = first["sets"]
    assert plain["method"] == "learned"
    assert plain["exemplar_set"] is None
    assert older["total_reps"] == plain["reps"]

    user_says = max(3, plain["reps"] // 3)
    assert api.patch(f"/api/v1/sets/{plain['id']}/", {"reps": user_says}, format="json").status_code == 200

    # exemplar: auto takes the set the user just corrected.
    second = counted(api, worker)
    assert second["sets"]
    assert {(s["method"], s["exemplar_set"]) for s in second["sets"]} == {("learned", plain["id"])}
    assert abs(second["total_reps"] - user_says) <= 1, (second["total_reps"], user_says, plain["reps"])

    # A re-count of the older session with the set named: its count follows too.
    since = timezone.now().isoformat()
    resp = api.post(f"/api/v1/sessions/{older['id']}/recount/", {"exemplar_set": plain["id"]}, format="json")
    assert resp.status_code == 202, resp.content
    assert resp.json()["status"] == "queued"
    recounted = wait_for_counting(api, older["id"], worker)
    assert recounted["status"] == "done", recounted["error"]
    assert {s["exemplar_set"] for s in recounted["sets"]} == {plain["id"]}
    assert abs(recounted["total_reps"] - user_says) <= 1
    assert not {s["id"] for s in older["sets"]} & {s["id"] for s in recounted["sets"]}
    # Sync clients see the old sets deleted and the new ones written, as after a correction.
    changes = api.get("/api/v1/sets/changes/", {"updated_since": since, "page_size": 1000}).json()["results"]
    assert {c["id"] for c in changes if "deleted_at" in c} == {s["id"] for s in older["sets"]}
    assert {c["id"] for c in changes if "deleted_at" not in c} >= {s["id"] for s in recounted["sets"]}

    # Another user may not name it.
    stranger = client_for(UserFactory())
    refused = upload(stranger, exemplar_set=plain["id"])
    assert refused.status_code == 404
    assert "exemplar_set" in refused.json()
    assert stranger.get("/api/v1/sessions/").json()["count"] == 0
