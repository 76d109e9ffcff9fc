import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from rest_framework.pagination import PageNumberPagination

from fitness.workouts import services, tasks
from fitness.workouts.models import SensorSession, Workout
from tests.factories import SensorSessionFactory, WorkoutFactory, canonical_csv, count_result

pytestmark = pytest.mark.django_db

SESSIONS = "/api/v1/sessions/"
WORKOUTS = "/api/v1/workouts/"


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(tasks.process_session, "delay", sent.append)
    return sent


def csv_file(data: bytes | None = None, name: str = "rec.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, canonical_csv() if data is None else data, content_type="text/csv")


def post_upload(client, **fields):
    data = {"file": csv_file(), "format": "csv", **fields}
    return client.post(SESSIONS, data, format="multipart")


def processed_session(user, spec):
    session = SensorSessionFactory(user=user)
    return services.session_save_result(session_id=session.pk, result=count_result(spec, model_version="v3"))


class TestUpload:
    def test_accepted_and_queued(self, api, user, queued, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            resp = post_upload(api, exercise="jump_rope")
        assert resp.status_code == 202, resp.content
        body = resp.json()
        assert body["status"] == "queued"
        assert body["exercise"] == "jump_rope"
        assert body["format"] == "csv"
        assert body["n_samples"] == 100
        assert body["duration_s"] == 9.9
        assert body["sets"] == []
        assert body["total_reps"] is None
        assert body["model_version"] is None
        session = SensorSession.objects.get(pk=body["id"])
        assert session.user == user
        assert queued == [body["id"]]

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"format": "xlsx"}, "format", "not a valid choice"),
            ({"exercise": "deadlifts"}, "exercise", "'deadlifts' is not in the exercise catalog; see GET"),
            ({"client_id": "not-a-uuid"}, "client_id", "valid UUID"),
            ({"workout": 999999}, "workout", "does not exist"),
            ({"file": csv_file(canonical_csv(n_samples=15))}, "file", "the recording lasts 1.40 s"),
            ({"file": csv_file(b"a;b\n1;2\n")}, "file", "no 'time_s' column"),
            ({"file": csv_file(b"")}, "file", "empty"),
            ({"format": "json"}, "file", "invalid JSON"),
        ],
    )
    def test_invalid_upload_is_400_naming_the_field_and_stores_nothing(
        self, api, stored_files, queued, fields, field, message
    ):
        resp = post_upload(api, **fields)
        assert resp.status_code == 400
        assert message in " ".join(resp.json()[field])
        assert not SensorSession.objects.exists()
        assert stored_files() == []
        assert queued == []

    def test_missing_file_is_400(self, api):
        resp = api.post(SESSIONS, {"format": "csv"}, format="multipart")
        assert resp.status_code == 400
        assert "file" in resp.json()

    def test_workout_of_another_user_is_400(self, api, other_user):
        resp = post_upload(api, workout=WorkoutFactory(user=other_user).pk)
        assert resp.status_code == 400
        assert "does not exist" in resp.json()["workout"][0]
        assert not SensorSession.objects.exists()

    def test_own_workout_is_linked(self, api, user):
        workout = WorkoutFactory(user=user)
        resp = post_upload(api, workout=workout.pk)
        assert resp.status_code == 202
        assert resp.json()["workout"] == workout.pk

    def test_too_large_is_413(self, api, settings, stored_files):
        settings.FITNESS_MAX_UPLOAD_BYTES = 1000
        resp = post_upload(api)
        assert resp.status_code == 413
        assert not SensorSession.objects.exists()
        assert stored_files() == []

    def test_client_id_retry_returns_existing_with_200(self, api, other_api, stored_files):
        client_id = str(uuid.uuid4())
        first = post_upload(api, client_id=client_id)
        retry = post_upload(api, client_id=client_id)
        assert (first.status_code, retry.status_code) == (202, 200)
        assert retry.json()["id"] == first.json()["id"]
        assert retry.json()["client_id"] == client_id
        other = post_upload(other_api, client_id=client_id)
        assert other.status_code == 202
        assert other.json()["id"] != first.json()["id"]
        assert SensorSession.objects.count() == 2
        assert len(stored_files()) == 2


class TestReadAndDelete:
    def test_detail_shows_sets_and_repetitions(self, api, user):
        session = processed_session(user, [("squat", 2, 3.0)])
        body = api.get(f"{SESSIONS}{session.pk}/").json()
        assert body["status"] == "done"
        assert body["total_reps"] == 2
        assert body["model_version"] == "v3"
        assert body["error"] == ""
        set_start = parse_datetime(body["sets"][0].pop("started_at"))
        assert set_start == parse_datetime(body["started_at"]) + timedelta(seconds=3.0)
        assert body["sets"] == [
            {
                "id": session.sets.get().pk,
                "exercise": "squat",
                "reps": 2,
                "start_s": 3.0,
                "end_s": 6.5,
                "method": "classifier",
                "counted_reps": 2,
                "corrected": False,
                "origin": "counter",
                "reviewed_at": None,
                "exemplar_set": None,
                "repetitions": [{"start_s": 3.0, "end_s": 4.5}, {"start_s": 5.0, "end_s": 6.5}],
            }
        ]
        assert body["reviewed_sets"] == 0

    def test_failed_session_shows_reason(self, api, user):
        session = SensorSessionFactory(user=user)
        services.session_mark_failed(session_id=session.pk, error="too short to count")
        body = api.get(f"{SESSIONS}{session.pk}/").json()
        assert (body["status"], body["error"]) == ("failed", "too short to count")

    def test_list_is_own_sessions_paginated(self, api, user, other_user, monkeypatch):
        monkeypatch.setattr(PageNumberPagination, "page_size", 2)
        mine = {str(SensorSessionFactory(user=user).pk) for _ in range(3)}
        SensorSessionFactory(user=other_user)
        page1 = api.get(SESSIONS).json()
        assert page1["count"] == 3
        assert len(page1["results"]) == 2
        page2 = api.get(page1["next"]).json()
        assert {r["id"] for r in page1["results"] + page2["results"]} == mine
        assert "repetitions" not in str(page1["results"])

    def test_delete_removes_session_and_file(self, api, user, stored_files, django_capture_on_commit_callbacks):
        session = processed_session(user, [("squat", 2, 0.0)])
        assert len(stored_files()) == 1
        with django_capture_on_commit_callbacks(execute=True):
            resp = api.delete(f"{SESSIONS}{session.pk}/")
        assert resp.status_code == 204
        assert not SensorSession.objects.exists()
        assert stored_files() == []


class TestSessionPermissions:
    def test_other_users_session_is_404(self, other_api, user, stored_files):
        session = SensorSessionFactory(user=user)
        assert other_api.get(f"{SESSIONS}{session.pk}/").status_code == 404
        assert other_api.delete(f"{SESSIONS}{session.pk}/").status_code == 404
        assert other_api.get(SESSIONS).json()["count"] == 0
        assert SensorSession.objects.filter(pk=session.pk).exists()
        assert len(stored_files()) == 1

    def test_owner_can_read(self, api, user):
        session = SensorSessionFactory(user=user)
        assert api.get(f"{SESSIONS}{session.pk}/").status_code == 200

    @pytest.mark.parametrize("method", ["get_list", "get", "delete", "post"])
    def test_anonymous_is_401(self, anon_client, user, method):
        session = SensorSessionFactory(user=user)
        resp = {
            "get_list": lambda: anon_client.get(SESSIONS),
            "get": lambda: anon_client.get(f"{SESSIONS}{session.pk}/"),
            "delete": lambda: anon_client.delete(f"{SESSIONS}{session.pk}/"),
            "post": lambda: anon_client.post(SESSIONS, {"file": csv_file(), "format": "csv"}, format="multipart"),
        }[method]()
        assert resp.status_code == 401
        assert resp["WWW-Authenticate"].startswith("Bearer")
        assert SensorSession.objects.count() == 1

    def test_update_is_not_offered(self, api, user):
        session = SensorSessionFactory(user=user)
        assert api.patch(f"{SESSIONS}{session.pk}/", {}, format="multipart").status_code == 405


class TestWorkouts:
    def test_crud_as_owner(self, api, user):
        created = api.post(WORKOUTS, {"date": "2024-05-02", "notes": "push"})
        assert created.status_code == 201
        wid = created.json()["id"]
        assert Workout.objects.get(pk=wid).user == user
        assert api.get(f"{WORKOUTS}{wid}/").json()["notes"] == "push"
        assert api.patch(f"{WORKOUTS}{wid}/", {"notes": "pull"}).json()["notes"] == "pull"
        assert api.put(f"{WORKOUTS}{wid}/", {"date": "2024-05-03", "notes": ""}).json()["date"] == "2024-05-03"
        assert api.get(WORKOUTS).json()["count"] == 1
        assert api.delete(f"{WORKOUTS}{wid}/").status_code == 204
        assert not Workout.objects.exists()

    def test_lists_sessions_of_the_workout(self, api, user):
        workout = WorkoutFactory(user=user)
        session = SensorSessionFactory(user=user, workout=workout)
        assert api.get(f"{WORKOUTS}{workout.pk}/").json()["sessions"] == [str(session.pk)]

    def test_invalid_date_is_400(self, api):
        resp = api.post(WORKOUTS, {"date": "yesterday"})
        assert resp.status_code == 400
        assert "date" in resp.json()

    def test_user_in_payload_is_ignored(self, api, user, other_user):
        resp = api.post(WORKOUTS, {"date": "2024-05-02", "user": other_user.pk})
        assert Workout.objects.get(pk=resp.json()["id"]).user == user

    def test_other_user_gets_404(self, other_api, user):
        workout = WorkoutFactory(user=user, notes="mine")
        url = f"{WORKOUTS}{workout.pk}/"
        assert other_api.get(url).status_code == 404
        assert other_api.patch(url, {"notes": "hacked"}).status_code == 404
        assert other_api.put(url, {"date": "2024-01-01", "notes": "hacked"}).status_code == 404
        assert other_api.delete(url).status_code == 404
        assert other_api.get(WORKOUTS).json()["count"] == 0
        workout.refresh_from_db()
        assert workout.notes == "mine"

    def test_anonymous_is_401(self, anon_client, user):
        workout = WorkoutFactory(user=user)
        url = f"{WORKOUTS}{workout.pk}/"
        assert anon_client.get(WORKOUTS).status_code == 401
        assert anon_client.post(WORKOUTS, {"date": "2024-05-02"}).status_code == 401
        assert anon_client.get(url).status_code == 401
        assert anon_client.patch(url, {"notes": "x"}).status_code == 401
        assert anon_client.delete(url).status_code == 401
        assert Workout.objects.count() == 1

    def test_deleting_a_workout_keeps_its_sessions(self, api, user):
        workout = WorkoutFactory(user=user)
        session = SensorSessionFactory(user=user, workout=workout)
        api.delete(f"{WORKOUTS}{workout.pk}/")
        session.refresh_from_db()
        assert session.workout is None


def test_urls_are_named():
    assert reverse("session-list") == SESSIONS
    assert reverse("workout-list") == WORKOUTS
