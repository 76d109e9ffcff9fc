"""GET /api/v1/exercises/ and the upload's exercise hint, validated against the catalog."""

from dataclasses import replace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fitness.mlmodels.models import ModelVersion, Stage
from fitness.workouts import selectors, tasks
from fitness.workouts.models import SensorSession
from inference import catalog
from inference.model import DEFAULT_MODEL_PATH, read_spec
from tests.factories import canonical_csv

pytestmark = pytest.mark.django_db

EXERCISES = "/api/v1/exercises/"
SESSIONS = "/api/v1/sessions/"


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(tasks.process_session, "delay", sent.append)
    return sent


def upload(client, **fields):
    data = {"file": SimpleUploadedFile("rec.csv", canonical_csv(), content_type="text/csv"), "format": "csv"}
    return client.post(SESSIONS, {**data, **fields}, format="multipart")


def test_lists_the_whole_catalog_with_methods_and_health_connect_types(api):
    resp = api.get(EXERCISES)
    assert resp.status_code == 200
    rows = resp.json()
    assert rows[0]["id"] == "unknown"
    assert {r["id"] for r in rows} == set(catalog.EXERCISES)
    by_id = {r["id"]: r for r in rows}
    assert by_id["lat_pull_down"] == {
        "id": "lat_pull_down",
        "name": "Lat pull-down",
        "method": "generic",
        "health_connect_type": 31,
    }
    assert by_id["unknown"]["health_connect_type"] == 0
    assert by_id["push_up"]["health_connect_type"] == catalog.HEALTH_CONNECT_OTHER_WORKOUT
    shipped = read_spec(DEFAULT_MODEL_PATH).exercises
    assert {i for i, r in by_id.items() if r["method"] == "classifier"} == {*shipped, "unknown"}
    assert by_id["jump_rope"]["method"] == "generic"


def test_the_methods_follow_the_production_version(api, monkeypatch):
    spec = read_spec(DEFAULT_MODEL_PATH)
    labels = (*spec.labels, "bench_press.first_half", "bench_press.second_half")
    monkeypatch.setattr(selectors, "counting_spec", lambda: replace(spec, labels=labels, scaling=spec.scaling))
    methods = {r["id"]: r["method"] for r in api.get(EXERCISES).json()}
    assert methods["bench_press"] == methods["squat"] == "classifier"
    assert methods["lunge"] == "generic"


def test_a_production_version_in_the_registry_decides_the_methods(api, user):
    spec = read_spec(DEFAULT_MODEL_PATH)
    labels = (*spec.labels, "lunge.first_half", "lunge.second_half")
    metadata = replace(spec, version="lunges-1", labels=labels, scaling=spec.scaling).to_dict()
    ModelVersion.objects.create(
        version="lunges-1",
        file="models/lunges-1.keras",
        checksum="1" * 64,
        size_bytes=1,
        metadata=metadata,
        stage=Stage.PRODUCTION,
    )
    methods = {r["id"]: r["method"] for r in api.get(EXERCISES).json()}
    assert methods["lunge"] == "classifier"
    assert methods["bench_press"] == "generic"


def test_every_signed_in_user_reads_the_same_list(api, other_api, anon_client):
    assert api.get(EXERCISES).json() == other_api.get(EXERCISES).json()
    assert anon_client.get(EXERCISES).status_code == 401


@pytest.mark.parametrize("hint", ["bench_press", "push_up", "unknown", "dumbbell_triceps_extension_right_arm"])
def test_an_upload_may_name_any_catalog_id(api, hint, queued):
    resp = upload(api, exercise=hint)
    assert resp.status_code == 202, resp.content
    assert resp.json()["exercise"] == hint
    assert SensorSession.objects.get(pk=resp.json()["id"]).exercise_hint == hint


@pytest.mark.parametrize("hint", ["pushups", "Squat", "x" * 65])
def test_a_hint_outside_the_catalog_is_400_naming_exercise_and_the_list(api, hint, stored_files, queued):
    resp = upload(api, exercise=hint)
    assert resp.status_code == 400
    message = " ".join(resp.json()["exercise"])
    assert "GET /api/v1/exercises/" in message or "64 characters" in message
    assert not SensorSession.objects.exists()
    assert stored_files() == []
    assert queued == []


def test_a_blank_hint_is_no_hint(api):
    resp = upload(api, exercise="")
    assert resp.status_code == 202
    assert SensorSession.objects.get(pk=resp.json()["id"]).exercise_hint == ""
