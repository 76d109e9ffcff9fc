"""Worker-side flows through the API with Celery running tasks in-process: shadow counting
of staging versions, and reprocessing sessions without counting anything twice."""

from __future__ import annotations

import io

import pytest

from fitness.mlmodels import services
from fitness.workouts.models import ExerciseSet, Repetition, SensorSession, ShadowResult
from tests.factories import SensorSessionFactory

from .conftest import model_channels_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def upload(client_for, user, eager_tasks, django_capture_on_commit_callbacks):
    """Upload a recording as ``user``; it is counted (and shadow-counted) before this returns."""
    api = client_for(user)

    def _upload(data: bytes, fmt: str, name: str) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            resp = api.post("/api/v1/sessions/", {"file": io.BytesIO(data), "format": fmt}, format="multipart")
        assert resp.status_code == 202, resp.content
        body = api.get(f"/api/v1/sessions/{resp.json()['id']}/").json()
        assert body["status"] == "done", body["error"]
        return body

    _upload.api = api
    return _upload


def stats(api) -> dict:
    return {row["exercise"]: (row["total_reps"], row["sets"]) for row in api.get("/api/v1/stats/exercises/").json()}


def result_rows() -> list[tuple]:
    return sorted(ExerciseSet.objects.values_list("session_id", "index", "exercise", "reps", "start_s", "end_s"))


class TestShadow:
    def test_staging_counts_apart_from_what_users_see(
        self, upload, staff_api, register, default_model_file, model_files, exermote_files
    ):
        services.register_shipped_model(path=default_model_file.path)
        staging = register(model_files["silent"], stage="staging")
        idle = register(model_files["b"])  # stage none: never counts in the shadow

        body = upload(exermote_files[0].read_bytes(), "exermote", exermote_files[0].name)

        # The user sees production's count only.
        assert body["model_version"] == default_model_file.version
        assert body["total_reps"] > 0
        assert body["total_reps"] == sum(s["reps"] for s in body["sets"])
        assert ExerciseSet.objects.count() == len(body["sets"])
        assert sum(r for r, _ in stats(upload.api).values()) == body["total_reps"]
        assert not any("shadow" in key for key in body)
        # The staging version's result is stored apart: it counted nothing, so it disagrees.
        shadow = ShadowResult.objects.get()
        assert (shadow.model_version, str(shadow.session_id)) == (staging, body["id"])
        assert (shadow.total_reps, shadow.sets, shadow.agrees, shadow.error) == (0, [], False, "")
        assert shadow.production_version == default_model_file.version
        assert (shadow.production_total_reps, shadow.production_sets) == (body["total_reps"], len(body["sets"]))
        assert not ShadowResult.objects.filter(model_version=idle).exists()
        # The version's page says how often it agreed with production.
        detail = staff_api.get(f"/api/v1/model-versions/{staging.pk}/").json()
        assert detail["shadow"] == {"sessions": 1, "agreed": 0, "agreement": 0.0, "errors": 0}

    def test_agreement_is_counted_and_stops_when_unstaged(self, upload, staff_api, register, model_files):
        register(model_files["silent"], stage="production")
        staging = register(model_files["silent2"], stage="staging")
        first = upload(model_channels_csv(), "csv", "a.csv")
        assert first["model_version"] == "silent-1"
        shadow = ShadowResult.objects.get()
        assert (shadow.agrees, shadow.total_reps, shadow.production_total_reps) == (True, 0, 0)
        listed = staff_api.get("/api/v1/model-versions/").json()["results"]
        assert {v["version"]: v["shadow"]["agreement"] for v in listed} == {"silent-2": 1.0, "silent-1": None}

        services.model_version_set_stage(version=staging, stage="none", user=None)
        upload(model_channels_csv(seconds=20), "csv", "b.csv")
        assert ShadowResult.objects.count() == 1

    def test_sessions_counted_by_peaks_are_not_shadow_counted(self, upload, register, model_files):
        register(model_files["silent"], stage="production")
        register(model_files["silent2"], stage="staging")
        from tests.factories import canonical_csv

        body = upload(canonical_csv(n_samples=300), "csv", "acc-only.csv")
        assert body["model_version"] is None  # three accelerometer channels: the peak counter
        assert not ShadowResult.objects.exists()


class TestReprocess:
    URL = "/api/v1/sessions/reprocess/"

    def test_same_model_same_result_nothing_doubled(
        self, upload, staff_api, default_model_file, exermote_files, django_capture_on_commit_callbacks
    ):
        services.register_shipped_model(path=default_model_file.path)
        body = upload(exermote_files[0].read_bytes(), "exermote", exermote_files[0].name)
        before_stats, before_rows, before_reps = stats(upload.api), result_rows(), Repetition.objects.count()
        assert before_stats
        assert before_reps == body["total_reps"]

        with django_capture_on_commit_callbacks(execute=True):
            resp = staff_api.post(self.URL, {"sessions": [body["id"]]}, format="json")
        assert resp.status_code == 202, resp.content
        assert resp.json() == {"queued": 1, "skipped": [], "corrections_kept": 0}
        with django_capture_on_commit_callbacks(execute=True):
            assert staff_api.post(self.URL, {"all": True}, format="json").json()["queued"] == 1

        session = SensorSession.objects.get()
        assert session.status == SensorSession.Status.DONE
        assert session.model_version == default_model_file.version
        assert stats(upload.api) == before_stats
        assert result_rows() == before_rows
        assert Repetition.objects.count() == before_reps

    def test_after_activation_and_rollback_stats_follow(
        self, upload, staff_api, staff, register, default_model_file, model_files, exermote_files,
        django_capture_on_commit_callbacks,
    ):  # fmt: skip
        shipped, _ = services.register_shipped_model(path=default_model_file.path)
        silent = register(model_files["silent"])
        upload(exermote_files[0].read_bytes(), "exermote", exermote_files[0].name)
        before = stats(upload.api)

        services.model_version_activate(version=silent, user=staff)
        with django_capture_on_commit_callbacks(execute=True):
            staff_api.post(self.URL, {"all": True}, format="json")
        session = SensorSession.objects.get()
        assert (session.model_version, session.total_reps) == ("silent-1", 0)
        assert stats(upload.api) == {}
        assert not ExerciseSet.objects.exists()

        services.model_version_activate(version=shipped, user=staff)  # the rollback
        with django_capture_on_commit_callbacks(execute=True):
            staff_api.post(self.URL, {"all": True}, format="json")
        assert SensorSession.objects.get().model_version == default_model_file.version
        assert stats(upload.api) == before

    def test_sessions_in_flight_or_unknown_are_skipped(
        self, staff_api, user, monkeypatch, django_capture_on_commit_callbacks
    ):
        from fitness.workouts import tasks

        sent: list[str] = []
        monkeypatch.setattr(tasks.reprocess_session, "delay", sent.append)
        done = SensorSessionFactory(user=user, status="done", total_reps=3)
        failed = SensorSessionFactory(user=user, status="failed", error="the counting model is not available")
        queued = SensorSessionFactory(user=user, status="queued")
        processing = SensorSessionFactory(user=user, status="processing")
        unknown = "00000000-0000-0000-0000-000000000000"
        ids = [str(s.pk) for s in (done, failed, queued, processing)] + [unknown]
        with django_capture_on_commit_callbacks(execute=True):
            resp = staff_api.post(self.URL, {"sessions": ids}, format="json")
        assert resp.status_code == 202
        assert resp.json() == {
            "queued": 2,
            "skipped": [str(queued.pk), str(processing.pk), unknown],
            "corrections_kept": 0,
        }
        assert sorted(sent) == sorted([str(done.pk), str(failed.pk)])
        failed.refresh_from_db()
        assert (failed.status, failed.error) == ("queued", "")

    @pytest.mark.parametrize(
        "payload", [{}, {"all": False}, {"all": True, "sessions": ["00000000-0000-0000-0000-000000000000"]}]
    )
    def test_either_sessions_or_all(self, staff_api, payload):
        assert staff_api.post(self.URL, payload, format="json").status_code == 400
