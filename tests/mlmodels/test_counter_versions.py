"""Learned counter versions in the registry (``ModelVersion.kind == "counter"``): upload of the
``.onnx`` (spec checked in the request, loaded and counting in the memory-capped child afterwards),
one production version per kind, rollback within the kind, ``production_counter``, registration of
the shipped counter, evaluation on users' corrections."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import IntegrityError, transaction

from fitness.mlmodels import runtime, services
from fitness.mlmodels.models import EvaluationStatus, Kind, ModelStageChange, ModelVersion, Source, Stage
from fitness.mlmodels.validation import validate_counter_file
from fitness.workouts.models import ExerciseSet
from inference.density import N_FEATURES, SPEC_KEY, DensityCounter
from inference.io import read_recording
from tests.conftest import bearer_client
from tests.factories import UserFactory
from tests.fixtures.counter import UNTRAINED

from .test_evaluation_corrections import recorded

URL = "/api/v1/model-versions/"
PROVISIONAL = UNTRAINED


def _with_spec(src: Path, dst: Path, change) -> Path:
    """Copy a counter file with its ``inference_counter.json`` entry replaced by ``change(spec)``
    (a dict, dumped as JSON, or a str written as it is)."""
    import onnx

    proto = onnx.load(str(src))
    for entry in proto.metadata_props:
        if entry.key == SPEC_KEY:
            value = change(json.loads(entry.value))
            entry.value = value if isinstance(value, str) else json.dumps(value)
    onnx.save(proto, str(dst))
    return dst


@pytest.fixture
def counter_file(tmp_path) -> Path:
    """The provisional (untrained) counter, version ``untrained-test``, in a temporary folder."""
    if not PROVISIONAL.is_file():
        pytest.skip(f"{PROVISIONAL} is missing")
    return Path(shutil.copy(PROVISIONAL, tmp_path / "counter.onnx"))


@pytest.fixture
def counter_named(counter_file, tmp_path):
    """``counter_named("v2")``: the same network with another version string (another file)."""

    def _make(version: str) -> Path:
        return _with_spec(counter_file, tmp_path / f"{version}.onnx", lambda spec: {**spec, "version": version})

    return _make


@pytest.fixture
def register_counter(staff):
    """Register a counter file, fully checked at once (``valid``); ``production=True`` activates it."""

    def _register(path: Path, *, production: bool = False) -> ModelVersion:
        version = services.model_version_create(upload=validate_counter_file(path.read_bytes()), user=staff)
        if production:
            version = services.model_version_activate(version=version, user=staff)
        return version

    return _register


def upload(client, data: bytes, name: str = "counter.onnx"):
    return client.post(URL, {"file": SimpleUploadedFile(name, data)}, format="multipart")


def nan_counter(tmp_path: Path) -> Path:
    """A valid ONNX graph with a counter spec whose density is NaN everywhere ((x - x) / (x - x))."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, N_FEATURES])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None])
    nodes = [
        helper.make_node("Sub", ["x", "x"], ["zero"]),
        helper.make_node("Div", ["zero", "zero"], ["nan"]),
        helper.make_node("ReduceMean", ["nan"], ["y"], axes=[2], keepdims=0),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "nan", [x], [y]), opset_imports=[helper.make_opsetid("", 13)], ir_version=8
    )
    helper.set_model_props(model, {SPEC_KEY: json.dumps({"version": "nan-counter"})})
    path = tmp_path / "nan.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.django_db
class TestUpload:
    def test_a_counter_upload_is_pending_then_valid_through_the_validation_task(
        self, staff_api, counter_file, stored_files, eager_tasks, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            resp = upload(staff_api, counter_file.read_bytes())
        assert resp.status_code == 202, resp.content
        body = resp.json()
        assert (body["kind"], body["version"], body["stage"]) == ("counter", "untrained-test", "none")
        assert body["validation_status"] == "pending"  # as answered; the task ran after the commit
        assert body["metadata"]["grid_hz"] == 10.0
        assert (body["channels"], body["labels"], body["window"], body["stride"]) == ([], [], None, None)
        assert body["sample_rate_hz"] == 10.0

        version = ModelVersion.objects.get(pk=body["id"])
        assert (version.kind, version.validation_status, version.validation_error) == (Kind.COUNTER, "valid", "")
        assert [p.name for p in stored_files()] == [f"{version.checksum}.onnx"]
        assert stored_files()[0].read_bytes() == counter_file.read_bytes()
        detail = staff_api.get(f"{URL}{version.pk}/").json()
        assert (detail["validation_status"], detail["runtime_status"]) == ("valid", "ready")
        assert staff_api.post(f"{URL}{version.pk}/activate/", format="json").status_code == 200

    def test_a_counter_that_cannot_count_ends_invalid_with_the_reason(self, staff_api, tmp_path):
        resp = upload(staff_api, nan_counter(tmp_path).read_bytes())
        assert resp.status_code == 202, resp.content
        pk = resp.json()["id"]

        version = services.model_version_validate(version_id=pk)

        assert version.validation_status == "invalid"
        assert "the density is not finite" in version.validation_error
        refused = staff_api.post(f"{URL}{pk}/activate/", format="json")
        assert refused.status_code == 400
        assert "is invalid" in refused.json()["detail"]

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            (lambda s: {k: v for k, v in s.items() if k != "version"}, "has no version"),
            (lambda s: {**s, "version": "no spaces allowed"}, "counter spec version"),
            (lambda s: {**s, "grid_hz": 100.0}, "grid_hz must be within 5-50"),
            (lambda s: {**s, "grid_hz": 2}, "grid_hz must be within 5-50"),
            (lambda s: {**s, "min_rate": -0.1}, "min_rate must be within"),
            (lambda s: {**s, "smooth_s": float("nan")}, "smooth_s must be a number"),
            (lambda s: {**s, "set_gap_s": 1e9}, "set_gap_s must be within"),
            (lambda s: {**s, "min_set_reps": 2.5}, "min_set_reps must be an integer"),
            (lambda s: {**s, "highpass_s": "2.5"}, "highpass_s must be a number"),
            (lambda s: {**s, "routing": []}, "routing must be a JSON object"),
            (lambda s: "{not json", "is not JSON"),
        ],
        ids=[
            "no-version", "bad-version", "grid-high", "grid-low", "negative-rate", "nan", "huge-gap",
            "fractional-reps", "string-number", "routing-list", "not-json",
        ],
    )  # fmt: skip
    def test_a_corrupted_spec_is_refused_naming_file_and_nothing_is_stored(
        self, staff_api, counter_file, tmp_path, stored_files, change, reason
    ):
        bad = _with_spec(counter_file, tmp_path / "bad.onnx", change)
        resp = upload(staff_api, bad.read_bytes())
        assert resp.status_code == 400, resp.content
        assert reason in " ".join(resp.json()["file"])
        assert not ModelVersion.objects.exists()
        assert stored_files() == []

    def test_a_classifier_onnx_is_still_refused(self, staff_api, counter_file, tmp_path, stored_files):
        import onnx

        from inference.runtime import EXPORT_KEY

        proto = onnx.load(str(counter_file))
        kept = [(e.key, e.value) for e in proto.metadata_props if e.key != SPEC_KEY]
        del proto.metadata_props[:]
        for key, value in [*kept, ("inference_metadata.json", "{}"), (EXPORT_KEY, "{}")]:
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(tmp_path / "export.onnx"))
        resp = upload(staff_api, (tmp_path / "export.onnx").read_bytes())
        assert resp.status_code == 400
        assert "upload the trained .keras model" in resp.json()["file"][0]
        assert stored_files() == []

    def test_the_same_counter_twice_is_refused(self, staff_api, counter_file):
        assert upload(staff_api, counter_file.read_bytes()).status_code == 202
        again = upload(staff_api, counter_file.read_bytes())
        assert again.status_code == 400
        assert "already registered as version untrained-test" in again.json()["file"][0]

    def test_too_large_is_refused(self, staff_api, counter_file, settings):
        settings.FITNESS_MAX_MODEL_BYTES = 1000
        resp = upload(staff_api, counter_file.read_bytes())
        assert resp.status_code in (400, 413)
        assert not ModelVersion.objects.exists()

    def test_the_list_filters_by_kind(self, staff_api, register, register_counter, model_files, counter_file):
        classifier = register(model_files["a"])
        counter = register_counter(counter_file)
        by_kind = {
            kind: [v["id"] for v in staff_api.get(URL, {"kind": kind}).json()["results"]]
            for kind in ("counter", "classifier")
        }
        assert by_kind == {"counter": [counter.pk], "classifier": [classifier.pk]}
        assert staff_api.get(URL, {"kind": "neither"}).status_code == 400


@pytest.mark.django_db
class TestOneProductionPerKind:
    def test_activating_a_counter_keeps_the_classifiers_production(
        self, staff_api, register, register_counter, model_files, counter_file
    ):
        classifier = register(model_files["a"], stage="production")
        counter = register_counter(counter_file)
        resp = staff_api.post(f"{URL}{counter.pk}/activate/", format="json")
        assert resp.status_code == 200, resp.content
        assert resp.json()["stage"] == "production"
        assert dict(ModelVersion.objects.filter(stage=Stage.PRODUCTION).values_list("kind", "pk")) == {
            "classifier": classifier.pk,
            "counter": counter.pk,
        }
        assert not ModelStageChange.objects.filter(version=classifier, to_stage=Stage.ARCHIVED).exists()
        # And the other way round: a new classifier leaves the counter where it is.
        b = register(model_files["b"], stage="production")
        assert dict(ModelVersion.objects.filter(stage=Stage.PRODUCTION).values_list("kind", "pk")) == {
            "classifier": b.pk,
            "counter": counter.pk,
        }

    def test_rollback_acts_within_the_kind(self, staff_api, register, register_counter, model_files, counter_named):
        classifier = register(model_files["a"], stage="production")
        first = register_counter(counter_named("counter-1"), production=True)
        second = register_counter(counter_named("counter-2"), production=True)
        first.refresh_from_db()
        assert first.stage == Stage.ARCHIVED
        archived = staff_api.get(URL, {"kind": "counter", "stage": "archived"}).json()["results"]
        assert [v["id"] for v in archived] == [first.pk]

        assert staff_api.post(f"{URL}{first.pk}/activate/", {"note": "roll back"}, format="json").status_code == 200

        stages = dict(ModelVersion.objects.values_list("pk", "stage"))
        assert stages == {classifier.pk: "production", first.pk: "production", second.pk: "archived"}
        history = staff_api.get(f"{URL}{first.pk}/").json()["stage_history"]
        latest = history[0]
        assert (latest["from_stage"], latest["to_stage"], latest["note"]) == ("archived", "production", "roll back")

    def test_the_database_refuses_a_second_production_counter_only(
        self, register, register_counter, model_files, counter_named
    ):
        register(model_files["a"], stage="production")
        register_counter(counter_named("counter-1"), production=True)
        other = register_counter(counter_named("counter-2"))
        with pytest.raises(IntegrityError), transaction.atomic():
            ModelVersion.objects.filter(pk=other.pk).update(stage=Stage.PRODUCTION)

    def test_a_counter_cannot_be_staged(self, staff_api, register_counter, counter_file):
        counter = register_counter(counter_file)
        resp = staff_api.post(f"{URL}{counter.pk}/stage/", {"stage": "staging"}, format="json")
        assert resp.status_code == 400
        assert "shadow counting runs classifier versions only" in resp.json()["stage"][0]
        assert ModelVersion.objects.get(pk=counter.pk).stage == Stage.NONE

    def test_no_export_is_queued_or_made_for_a_counter(self, register_counter, counter_file, stored_files):
        counter = register_counter(counter_file)
        assert services.model_versions_requeue_stale(pending_after_s=0) == []
        assert services.model_version_export(version_id=counter.pk).runtime_status == "ready"
        assert [p.suffix for p in stored_files()] == [".onnx"]


@pytest.mark.django_db
class TestProductionCounter:
    def test_none_without_a_production_counter_then_the_activated_one_loaded_once(
        self, register, register_counter, model_files, counter_named
    ):
        register(model_files["a"], stage="production")
        first = register_counter(counter_named("counter-1"))
        assert runtime.production_counter() is None  # the caller decides the default
        services.model_version_activate(version=first, user=None)

        counter = runtime.production_counter()

        assert isinstance(counter, DensityCounter)
        assert counter.spec.version == "counter-1"
        assert runtime.production_counter() is counter  # once per process per checksum
        assert runtime.production_model().spec.version == "tiny-a"  # the classifier is its own
        second = register_counter(counter_named("counter-2"), production=True)
        assert runtime.production_counter().spec.version == second.version

    def test_a_changed_file_is_not_loaded(self, register_counter, counter_named):
        from inference.model import ModelFileError

        version = register_counter(counter_named("counter-changed"), production=True)
        Path(version.file.path).write_bytes(PROVISIONAL.read_bytes())  # other bytes under its name
        with pytest.raises(ModelFileError, match="does not match its checksum"):
            runtime.production_counter()


@pytest.mark.django_db
class TestRegisterDefaultModel:
    def test_the_shipped_counter_becomes_production_beside_the_classifier(
        self, register, model_files, counter_file, tmp_path, capsys
    ):
        classifier = register(model_files["a"], stage="production")
        call_command("register_default_model", path=tmp_path / "absent.keras", counter_path=counter_file)
        counter = ModelVersion.objects.get(kind=Kind.COUNTER)
        assert (counter.version, counter.stage, counter.source) == ("untrained-test", "production", Source.SHIPPED)
        assert counter.validation_status == "valid"
        assert "model version untrained-test (counter) registered" in capsys.readouterr().out
        classifier.refresh_from_db()
        assert classifier.stage == Stage.PRODUCTION
        # Idempotent by checksum.
        call_command("register_default_model", path=tmp_path / "absent.keras", counter_path=counter_file)
        assert ModelVersion.objects.filter(kind=Kind.COUNTER).count() == 1
        assert ModelStageChange.objects.filter(version=counter).count() == 1

    def test_an_admins_counter_is_kept_and_a_new_shipped_one_only_registered(
        self, register_counter, counter_named, tmp_path
    ):
        chosen = register_counter(counter_named("chosen"), production=True)
        shipped, created = services.register_shipped_counter(path=counter_named("shipped-2"))
        assert created
        assert (shipped.stage, chosen.stage) == (Stage.NONE, Stage.PRODUCTION)

    def test_no_counter_file_registers_no_counter_quietly(self, tmp_path, capsys):
        call_command("register_default_model", path=tmp_path / "absent.keras", counter_path=tmp_path / "none.onnx")
        out = capsys.readouterr()
        assert out.out == ""
        assert "none.onnx" not in out.err  # only the classifier's warning
        assert not ModelVersion.objects.exists()
        assert services.register_shipped_counter(path=tmp_path / "none.onnx") is None


@pytest.mark.django_db
class TestEvaluation:
    @pytest.fixture
    def corrected(self):
        """A session with a jump-rope set (peaks, corrected 4 -> 5), a squat set (classifier, confirmed)
        and a set the user added (manual)."""
        user = UserFactory()
        api = bearer_client(user)
        session = recorded(user, [("jump_rope", 4, 0.0), ("squat", 3, 12.0)])
        rope, squat = ExerciseSet.objects.filter(session=session).order_by("start_s")
        assert (rope.method, squat.method) == ("peaks", "classifier")
        assert api.patch(f"/api/v1/sets/{rope.pk}/", {"reps": 5}, format="json").status_code == 200
        assert api.patch(f"/api/v1/sets/{squat.pk}/", {"reps": 3}, format="json").status_code == 200
        added = {"exercise": "burpee", "reps": 2, "start_s": 24.0, "end_s": 29.0}
        assert api.post(f"/api/v1/sessions/{session.pk}/sets/", added, format="json").status_code == 201
        return session

    def test_a_counter_is_evaluated_on_the_corrected_sets_the_classifier_did_not_count(
        self, staff_api, register_counter, counter_file, corrected, eager_tasks, django_capture_on_commit_callbacks
    ):
        version = register_counter(counter_file)
        with django_capture_on_commit_callbacks(execute=True):
            resp = staff_api.post(f"{URL}{version.pk}/evaluate/", {}, format="json")  # corrections by default
        assert resp.status_code == 202, resp.content
        version.refresh_from_db()
        assert version.evaluation_status == EvaluationStatus.DONE, version.evaluation_error
        figures = version.metrics["corrections"]
        assert figures["dataset"]["kind"] == "corrections"
        # Scored: the jump-rope set (5) and the burpee set the user added (2); not the classifier's squats.
        assert (figures["sets"], figures["recordings"], figures["recordings_skipped"]) == (2, 1, 0)
        with corrected.file.open("rb") as fh:
            recording = read_recording(fh, corrected.format)
        counted = DensityCounter(counter_file).count(recording, exercise="unknown")
        assert figures["sets_counted"] == len(counted)
        in_rope = sum(1 for s in counted for r in s.repetitions if -1.0 <= (r.start_s + r.end_s) / 2 <= 8.5)
        in_burpee = sum(1 for s in counted for r in s.repetitions if 23.0 <= (r.start_s + r.end_s) / 2 <= 30.0)
        errors = [abs(in_rope - 5), abs(in_burpee - 2)]
        assert figures["count_mae"] == pytest.approx(np.mean(errors))

    def test_a_counter_is_not_evaluated_on_labels(self, staff_api, register_counter, counter_file):
        version = register_counter(counter_file)
        resp = staff_api.post(f"{URL}{version.pk}/evaluate/", {"dataset": "sessions"}, format="json")
        assert resp.status_code == 400
        assert "a counter version is evaluated on true set counts" in resp.json()["dataset"][0]
        assert ModelVersion.objects.get(pk=version.pk).evaluation_status == EvaluationStatus.NEVER
