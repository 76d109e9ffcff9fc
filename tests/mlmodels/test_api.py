"""The staff-only model registry API: upload and validation, stages, activation and rollback."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fitness.mlmodels.models import EvaluationStatus, ModelStageChange, ModelVersion, Stage
from inference.lab.train import MODEL_CHANNELS
from tests.factories import SensorSessionFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/model-versions/"


def upload(client, model, notes: str | None = None, name: str = "model.keras"):
    body = {"file": SimpleUploadedFile(name, model if isinstance(model, bytes) else model.data)}
    if notes is not None:
        body["notes"] = notes
    return client.post(URL, body, format="multipart")


class TestPermissions:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("get", ""),
            ("post", ""),
            ("get", "{id}/"),
            ("post", "{id}/activate/"),
            ("post", "{id}/evaluate/"),
            ("post", "{id}/stage/"),
        ],
    )
    def test_non_staff_get_403_and_anonymous_401(self, api, anon_client, register, model_files, method, path):
        version = register(model_files["a"])
        url = URL + path.format(id=version.pk)
        assert getattr(api, method)(url).status_code == 403
        assert getattr(anon_client, method)(url).status_code == 401
        version.refresh_from_db()
        assert version.stage == Stage.NONE

    def test_reprocess_is_staff_only(self, api, anon_client, user):
        session = SensorSessionFactory(user=user, status="done")
        assert api.post("/api/v1/sessions/reprocess/", {"all": True}, format="json").status_code == 403
        assert anon_client.post("/api/v1/sessions/reprocess/", {"all": True}, format="json").status_code == 401
        session.refresh_from_db()
        assert session.status == "done"


class TestUpload:
    def test_valid_file_is_registered_with_its_metadata(self, staff_api, staff, model_files, stored_files):
        resp = upload(staff_api, model_files["a"], notes="first try")
        assert resp.status_code == 202, resp.content
        body = resp.json()
        version = ModelVersion.objects.get()
        assert body["id"] == version.pk
        assert body["version"] == "tiny-a"
        assert body["stage"] == "none"
        assert body["uploaded_by"] == staff.username
        assert body["notes"] == "first try"
        assert body["window"] == 8
        assert body["sample_rate_hz"] == 10.0
        assert body["stride"] == 1
        assert body["channels"] == list(MODEL_CHANNELS)
        assert body["derived_channels"] == [
            "user_acc_vertical",
            "user_acc_horizontal",
            "gyro_vertical",
            "gyro_horizontal",
        ]
        assert body["labels"][0] == "break"
        assert body["exercises"] == ["burpee", "sit_up", "squat"]
        assert body["training_data_digest"] == "0" * 64
        assert body["hyperparameters"]["window"] == 8
        assert body["code_version"]
        assert body["scaling"] == version.metadata["scaling"]
        assert body["metadata"] == version.metadata
        assert body["evaluation_status"] == "never"
        assert body["shadow"] == {"sessions": 0, "agreed": 0, "agreement": None, "errors": 0}
        assert body["stage_history"] == []
        # The stored file is the uploaded one, content-addressed; its export is made later.
        assert [p.name for p in stored_files()] == [f"{version.checksum}.keras"]
        assert stored_files()[0].read_bytes() == model_files["a"].data
        assert (body["runtime_status"], body["runtime_error"], body["runtime_export"]) == ("pending", "", {})
        # Its full check runs on the admin queue: pending until a worker says valid or invalid.
        assert (body["validation_status"], body["validation_error"]) == ("pending", "")
        assert body["checksum"] == version.checksum
        assert body["size_bytes"] == len(model_files["a"].data)

    @pytest.mark.parametrize(
        ("make", "reason"),
        [
            (lambda f: f["a"].data[: len(f["a"].data) // 2], "not a model file"),
            (lambda f: b"PK\x03\x04 not really a zip", "not a model file"),
            (lambda f: b"\x89HDF\r\n\x1a\n" + bytes(2000), "not a model file"),
            (lambda f: f["no_scaling"].data, "metadata lacks scaling"),
            (lambda f: f["bad_labels"].data, "labels"),
            (lambda f: f["long_version"].data, "version"),
            (lambda f: b"\x08\x07\x12\x07onnx" + bytes(100), ".keras"),
        ],
        ids=["truncated", "foreign-zip", "foreign-hdf5", "incomplete-metadata", "labels", "version", "onnx"],
    )
    def test_broken_files_are_refused_with_a_reason_and_nothing_stored(
        self, staff_api, model_files, stored_files, make, reason
    ):
        resp = upload(staff_api, make(model_files))
        assert resp.status_code == 400, resp.content
        assert reason in " ".join(resp.json()["file"])
        assert not ModelVersion.objects.exists()
        assert stored_files() == []

    def test_empty_file_is_refused(self, staff_api, stored_files):
        resp = upload(staff_api, b"")
        assert resp.status_code == 400
        assert "file" in resp.json()
        assert stored_files() == []

    def test_same_file_or_same_version_twice_is_refused(self, staff_api, model_files, stored_files, tmp_path):
        assert upload(staff_api, model_files["a"]).status_code == 202
        again = upload(staff_api, model_files["a"])
        assert again.status_code == 400
        assert "already registered as version tiny-a" in again.json()["file"][0]
        # Same version string, different weights.
        from tests.mlmodels.conftest import _tiny

        clash = _tiny(tmp_path, "tiny-a", seed=9)
        resp = upload(staff_api, clash)
        assert resp.status_code == 400
        assert "a new model needs a new version" in resp.json()["file"][0]
        assert ModelVersion.objects.count() == 1
        assert len(stored_files()) == 1  # the first version's .keras

    def test_too_large_is_refused(self, staff_api, model_files, settings):
        settings.FITNESS_MAX_MODEL_BYTES = 1000
        resp = upload(staff_api, model_files["a"])
        assert resp.status_code in (400, 413)
        assert not ModelVersion.objects.exists()


class TestActivation:
    def test_activate_makes_production_and_archives_the_previous(self, staff_api, staff, register, model_files):
        a = register(model_files["a"], stage="production")
        b = register(model_files["b"])
        resp = staff_api.post(f"{URL}{b.pk}/activate/", {"note": "better on squats"}, format="json")
        assert resp.status_code == 200, resp.content
        body = resp.json()
        assert body["stage"] == "production"
        assert body["activated_by"] == staff.username
        assert body["activated_at"]
        a.refresh_from_db()
        assert a.stage == Stage.ARCHIVED
        assert list(ModelVersion.objects.filter(stage=Stage.PRODUCTION)) == [b]
        assert body["stage_history"][0] | {"changed_at": None} == {
            "from_stage": "none",
            "to_stage": "production",
            "changed_by": staff.username,
            "changed_at": None,
            "note": "better on squats",
        }
        log = list(ModelStageChange.objects.order_by("id").values_list("version__version", "from_stage", "to_stage"))
        assert log[-2:] == [("tiny-a", "production", "archived"), ("tiny-b", "none", "production")]
        assert all(c.changed_by == staff for c in ModelStageChange.objects.all())

    def test_rollback_is_activating_the_archived_version(self, staff_api, register, model_files):
        a = register(model_files["a"], stage="production")
        b = register(model_files["b"], stage="production")
        a.refresh_from_db()
        assert a.stage == Stage.ARCHIVED
        resp = staff_api.post(f"{URL}{a.pk}/activate/", format="json")
        assert resp.status_code == 200
        a.refresh_from_db()
        b.refresh_from_db()
        assert (a.stage, b.stage) == (Stage.PRODUCTION, Stage.ARCHIVED)
        assert [c["to_stage"] for c in resp.json()["stage_history"]] == ["production", "archived", "production"]

    def test_activating_production_again_changes_nothing(self, staff_api, register, model_files):
        a = register(model_files["a"], stage="production")
        changes = ModelStageChange.objects.count()
        assert staff_api.post(f"{URL}{a.pk}/activate/", format="json").status_code == 200
        assert ModelStageChange.objects.count() == changes

    def test_a_version_whose_file_is_gone_cannot_be_activated(self, staff_api, register, model_files):
        a = register(model_files["a"], stage="production")
        b = register(model_files["b"])
        b.file.storage.delete(b.file.name)
        resp = staff_api.post(f"{URL}{b.pk}/activate/", format="json")
        assert resp.status_code == 400
        assert "cannot be read" in str(resp.json())
        a.refresh_from_db()
        assert a.stage == Stage.PRODUCTION

    def test_unknown_version_is_404(self, staff_api):
        assert staff_api.post(f"{URL}999/activate/", format="json").status_code == 404


class TestStage:
    def test_staging_and_back(self, staff_api, register, model_files):
        b = register(model_files["b"])
        resp = staff_api.post(f"{URL}{b.pk}/stage/", {"stage": "staging"}, format="json")
        assert resp.status_code == 200
        assert resp.json()["stage"] == "staging"
        assert staff_api.post(f"{URL}{b.pk}/stage/", {"stage": "none"}, format="json").json()["stage"] == "none"
        assert [c.to_stage for c in b.stage_changes.order_by("id")] == ["staging", "none"]

    def test_production_only_through_activation(self, staff_api, register, model_files):
        a = register(model_files["a"], stage="production")
        b = register(model_files["b"])
        resp = staff_api.post(f"{URL}{b.pk}/stage/", {"stage": "production"}, format="json")
        assert resp.status_code == 400
        resp = staff_api.post(f"{URL}{a.pk}/stage/", {"stage": "archived"}, format="json")
        assert resp.status_code == 400
        assert "another version is activated" in resp.json()["stage"][0]
        a.refresh_from_db()
        assert a.stage == Stage.PRODUCTION


class TestReadAndEvaluateQueue:
    def test_list_and_filter_by_stage(self, staff_api, register, model_files):
        register(model_files["a"], stage="production")
        register(model_files["b"], stage="staging")
        register(model_files["silent"])
        body = staff_api.get(URL).json()
        assert body["count"] == 3
        assert {v["version"]: v["stage"] for v in body["results"]} == {
            "tiny-a": "production",
            "tiny-b": "staging",
            "silent-1": "none",
        }
        only = staff_api.get(URL, {"stage": "production"}).json()["results"]
        assert [v["version"] for v in only] == ["tiny-a"]

    def test_evaluate_queues_a_task_after_commit(
        self, staff_api, register, model_files, monkeypatch, django_capture_on_commit_callbacks, settings
    ):
        from fitness.mlmodels import tasks

        sent = []
        monkeypatch.setattr(tasks.evaluate_model_version, "delay", lambda *a: sent.append(a))
        a = register(model_files["a"])
        with django_capture_on_commit_callbacks(execute=True):
            resp = staff_api.post(f"{URL}{a.pk}/evaluate/", format="json")
        assert resp.status_code == 202
        assert resp.json()["evaluation_status"] == EvaluationStatus.QUEUED
        assert sent == [(a.pk, {"kind": "manifest", "manifest": str(settings.FITNESS_EVALUATION_MANIFEST)})]

    def test_evaluate_refuses_unlabelled_sessions(self, staff_api, register, model_files, user):
        a = register(model_files["a"])
        session = SensorSessionFactory(user=user)
        resp = staff_api.post(f"{URL}{a.pk}/evaluate/", {"sessions": [str(session.pk)]}, format="json")
        assert resp.status_code == 400
        assert "evaluation needs labelled exermote files" in resp.json()["sessions"][0]
        a.refresh_from_db()
        assert a.evaluation_status == EvaluationStatus.NEVER
