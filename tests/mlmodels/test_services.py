"""Registry services: the one-production invariant, registration of the shipped model, evaluation."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from fitness.mlmodels import services
from fitness.mlmodels.models import EvaluationStatus, ModelStageChange, ModelVersion, Source, Stage
from fitness.mlmodels.validation import validate_model_file
from fitness.workouts import services as workout_services
from fitness.workouts.models import EvaluationSession
from fitness.workouts.services import evaluation_sessions
from inference.io import read_recording
from inference.model import ModelFileError, read_metadata
from inference.results import CountingError
from tests.factories import SensorSessionFactory

from .conftest import model_channels_csv


class TestOneProduction:
    @pytest.mark.django_db
    def test_the_database_refuses_a_second_production_version(self, register, model_files):
        register(model_files["a"], stage="production")
        b = register(model_files["b"])
        with pytest.raises(IntegrityError), transaction.atomic():
            ModelVersion.objects.filter(pk=b.pk).update(stage=Stage.PRODUCTION)

    @pytest.mark.django_db(transaction=True)
    def test_concurrent_activations_serialise(self, staff, model_files):
        """Threads with their own connections activate different versions at the same moment.

        Every activation succeeds, exactly one version is production after each round, and
        the log is one unbroken chain: each change starts from the stage the previous left.
        """
        names = ["a", "b", "silent", "silent2"]
        versions = [
            services.model_version_create(upload=validate_model_file(model_files[n].data), user=staff) for n in names
        ]
        services.model_version_activate(version=versions[0], user=staff)
        rounds = 3
        errors: list[BaseException] = []

        def activate(version: ModelVersion, barrier: threading.Barrier) -> None:
            try:
                barrier.wait(timeout=30)
                services.model_version_activate(version=version.pk, user=staff)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        for _ in range(rounds):
            barrier = threading.Barrier(len(versions))
            threads = [threading.Thread(target=activate, args=(v, barrier)) for v in versions]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert not errors, errors
            assert ModelVersion.objects.filter(stage=Stage.PRODUCTION).count() == 1

        # Replaying the log per version ends in each version's current stage, and every
        # activation that changed something archived exactly the one production version.
        state = {v.pk: Stage.NONE for v in versions}
        production = None
        for change in ModelStageChange.objects.order_by("changed_at", "id"):
            assert state[change.version_id] == change.from_stage, "a change started from a stale stage"
            state[change.version_id] = change.to_stage
            if change.to_stage == Stage.PRODUCTION:
                assert production is None or state[production] == Stage.ARCHIVED
                production = change.version_id
        assert state == dict(ModelVersion.objects.values_list("pk", "stage"))
        assert list(state.values()).count(Stage.PRODUCTION) == 1


@pytest.mark.django_db
class TestRegisterShippedModel:
    def test_shipped_model_becomes_production_with_its_evaluation(self, default_model_file, stored_files, tmp_path):
        no_counter = tmp_path / "no-counter.onnx"  # the shipped counter has tests of its own
        call_command("register_default_model", counter_path=no_counter)
        version = ModelVersion.objects.get()
        meta = read_metadata(default_model_file.path)
        assert (version.version, version.stage, version.source) == (meta["version"], Stage.PRODUCTION, Source.SHIPPED)
        assert version.evaluation_status == EvaluationStatus.DONE
        assert version.metrics["dataset"]["kind"] == "loso"
        overall = meta["evaluation"]["overall"]
        assert version.metrics["sets_within_1"] == overall["sets_within_1"]
        assert version.metrics["frame_accuracy_7"] == overall["frame_accuracy_7"]
        assert next(p for p in stored_files() if p.suffix == ".keras").read_bytes() == default_model_file.data
        from inference.model import DEFAULT_MODEL_PATH

        assert next(p for p in stored_files() if p.suffix == ".onnx").read_bytes() == DEFAULT_MODEL_PATH.read_bytes()
        assert version.runtime_status == "ready"  # checked and stored by the command, not queued
        change = version.stage_changes.get()
        assert (change.from_stage, change.to_stage, change.changed_by) == ("none", "production", None)
        # Idempotent by checksum.
        call_command("register_default_model", counter_path=no_counter)
        assert ModelVersion.objects.count() == 1
        assert ModelStageChange.objects.count() == 1

    def test_a_new_shipped_file_replaces_a_shipped_production_only(self, staff, register, model_files):
        first, created = services.register_shipped_model(path=model_files["a"].path)
        assert created
        assert first.stage == Stage.PRODUCTION
        # A deploy brings a new default: it supersedes the earlier shipped one.
        second, _ = services.register_shipped_model(path=model_files["b"].path)
        assert second.stage == Stage.PRODUCTION
        first.refresh_from_db()
        assert first.stage == Stage.ARCHIVED
        # An admin's choice is kept: a later shipped file is only registered.
        chosen = register(model_files["silent"], stage="production")
        third, _ = services.register_shipped_model(path=model_files["silent2"].path)
        assert third.stage == Stage.NONE
        chosen.refresh_from_db()
        assert chosen.stage == Stage.PRODUCTION

    def test_missing_file_registers_nothing(self, tmp_path, capsys):
        call_command("register_default_model", path=tmp_path / "absent.keras", counter_path=tmp_path / "absent.onnx")
        assert "no model file" in capsys.readouterr().err
        assert not ModelVersion.objects.exists()

    def test_version_taken_by_another_file_is_an_error(self, register, model_files, tmp_path):
        from django.core.management.base import CommandError

        from .conftest import _tiny

        register(model_files["a"])
        clash = _tiny(tmp_path, "tiny-a", seed=7)
        with pytest.raises(CommandError, match="a new model needs a new version"):
            call_command("register_default_model", path=clash.path, counter_path=tmp_path / "absent.onnx")


@pytest.mark.django_db
class TestRunPipeline:
    def test_counts_with_the_production_version(self, register, model_files):
        recording = read_recording(model_channels_csv(), "csv")
        register(model_files["a"], stage="production")
        assert workout_services.run_pipeline(recording, exercise=None).model_version == "tiny-a"
        register(model_files["b"], stage="production")
        assert workout_services.run_pipeline(recording, exercise=None).model_version == "tiny-b"

    def test_a_production_file_that_changed_is_not_used(self, register, model_files):
        version = register(model_files["a"], stage="production")
        with version.file.open("wb") as fh:  # what workers load until the version has its export
            fh.write(model_files["b"].data)
        recording = read_recording(model_channels_csv(), "csv")
        with pytest.raises(CountingError, match="not available"):
            workout_services.run_pipeline(recording, exercise=None)
        # Hinted sessions are still counted, by peaks, without a model version.
        assert workout_services.run_pipeline(recording, exercise="squat").model_version is None


@pytest.mark.django_db
class TestEvaluation:
    def manifest(self, tmp_path, root, files) -> str:
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps({"format": "exermote", "root": str(root), "files": files}))
        return str(path)

    def test_metrics_on_a_manifest(self, register, model_files, exermote_files, tmp_path):
        version = register(model_files["silent"])
        manifest = self.manifest(tmp_path, exermote_files[0].parent, [exermote_files[0].name])
        services.model_version_evaluate(version_id=version.pk, dataset={"kind": "manifest", "manifest": manifest})
        version.refresh_from_db()
        assert version.evaluation_status == EvaluationStatus.DONE, version.evaluation_error
        assert version.evaluated_at is not None
        m = version.metrics
        assert m["dataset"] == {"kind": "manifest", "manifest": "manifest.json", "files": [exermote_files[0].name]}
        assert m["recordings"] == 1
        for key in ("frame_accuracy_7", "frame_accuracy_4", "sets_exact", "sets_within_1", "count_mae"):
            assert isinstance(m[key], float)
        # A model that always says "break" counts nothing: every true set is missed.
        assert m["sets"] > 0
        assert m["missed_sets"] == m["sets"]
        assert m["sets_exact"] == 0.0
        assert m["phantom_reps"] == 0

    def test_default_dataset_is_the_shipped_manifest_unless_sessions_are_configured(
        self, staff, exermote_files, settings
    ):
        assert services.evaluation_dataset() == {
            "kind": "manifest",
            "manifest": str(settings.FITNESS_EVALUATION_MANIFEST),
        }
        manifest = json.loads(Path(str(settings.FITNESS_EVALUATION_MANIFEST)).read_text())
        assert manifest["files"]
        session, _ = workout_services.session_create(
            user=staff, file=io.BytesIO(exermote_files[0].read_bytes()), fmt="exermote", filename=exermote_files[0].name
        )
        EvaluationSession.objects.create(session=session, added_by=staff)
        assert services.evaluation_dataset() == {"kind": "sessions", "sessions": [str(session.pk)], "configured": True}

    def test_metrics_on_labelled_sessions_through_the_api(
        self,
        staff_api,
        register,
        model_files,
        exermote_files,
        eager_tasks,
        django_capture_on_commit_callbacks,
        user,
        client_for,
    ):
        version = register(model_files["silent"])
        with exermote_files[1].open("rb") as fh:
            resp = client_for(user).post("/api/v1/sessions/", {"file": fh, "format": "exermote"}, format="multipart")
        session_id = resp.json()["id"]
        with django_capture_on_commit_callbacks(execute=True):
            resp = staff_api.post(
                f"/api/v1/model-versions/{version.pk}/evaluate/", {"sessions": [session_id]}, format="json"
            )
        assert resp.status_code == 202, resp.content
        body = staff_api.get(f"/api/v1/model-versions/{version.pk}/").json()
        assert body["evaluation_status"] == "done", body["evaluation_error"]
        assert body["metrics"]["dataset"] == {"kind": "sessions", "sessions": [session_id]}
        assert body["metrics"]["recordings"] == 1
        assert body["metrics"]["missed_sets"] == body["metrics"]["sets"] > 0

    def test_missing_evaluation_data_fails_with_the_reason(self, register, model_files, tmp_path):
        version = register(model_files["a"])
        manifest = self.manifest(tmp_path, tmp_path / "nowhere", ["gone.csv"])
        services.model_version_evaluate(version_id=version.pk, dataset={"kind": "manifest", "manifest": manifest})
        version.refresh_from_db()
        assert version.evaluation_status == EvaluationStatus.FAILED
        assert "evaluation files missing" in version.evaluation_error
        assert "gone.csv" in version.evaluation_error
        assert version.metrics == {}


@pytest.mark.django_db
def test_validation_runs_the_counting_path(model_files):
    validated = validate_model_file(model_files["a"].data)
    assert validated.version == "tiny-a"
    assert validated.metadata["window"] == 8
    with pytest.raises(ModelFileError, match="empty"):
        validate_model_file(b"")


@pytest.mark.django_db
def test_unlabelled_or_missing_sessions_cannot_be_evaluation_sessions(user):
    session = SensorSessionFactory(user=user)
    with pytest.raises(services.RegistryError, match="labelled exermote"):
        evaluation_sessions.labelled_sessions([session.pk])
    with pytest.raises(services.RegistryError, match="does not exist"):
        services.evaluation_dataset(session_ids=["00000000-0000-0000-0000-000000000000"])
