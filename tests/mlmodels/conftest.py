"""Fixtures for the model registry: small real model files, staff clients, eager Celery."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fitness.mlmodels import services
from fitness.mlmodels.models import ModelVersion
from fitness.mlmodels.validation import validate_model_file
from inference.model import DEFAULT_KERAS_PATH, METADATA_ENTRY
from tests.factories import UserFactory

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EXERMOTE_DIR = SHARED_DATA / "exermote"


@dataclass(frozen=True)
class ModelFile:
    path: Path
    version: str

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def _tiny(out: Path, version: str, *, seed: int = 0, always_break: bool = False, **meta_overrides) -> ModelFile:
    """A small CNN-LSTM with complete metadata (window 8 at 10 Hz, the model channels).

    ``always_break``: the output layer always says ``break``, so the model counts nothing.
    """
    import keras

    from inference.counting import CountingParams
    from inference.lab.train import Hyperparameters, build_spec
    from inference.model import build_network, save_model
    from inference.preprocessing import Scaler

    keras.utils.set_random_seed(seed)
    hp = Hyperparameters(
        architecture="window", window=8, label_offset=4, epochs=1, conv_filters=4, lstm_units=4, ensemble=1
    )
    network = build_network(hp.window, len(hp.input_channels), len(hp.labels), conv_filters=4, lstm_units=4)
    if always_break:
        dense = network.layers[-1]
        kernel, bias = dense.get_weights()
        bias[:] = 0.0
        bias[0] = 20.0
        dense.set_weights([np.zeros_like(kernel), bias])
    n = len(hp.input_channels)
    scaler = Scaler(tuple([0.0] * n), tuple([1.0] * n))
    spec = build_spec(hp, scaler=scaler, params=CountingParams(), digest="0" * 64, subjects=["1"], version=version)
    path = save_model(network, spec, out / f"{version}.keras")
    if meta_overrides:
        path = _rewrite_metadata(path, out / f"{version}-changed.keras", lambda m: {**m, **meta_overrides})
    return ModelFile(path=path, version=version)


def _rewrite_metadata(src: Path, dst: Path, change) -> Path:
    """Copy a model file with its embedded metadata changed by ``change(meta) -> meta``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == METADATA_ENTRY:
                data = json.dumps(change(json.loads(data))).encode()
            zout.writestr(item, data)
    return dst


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict[str, ModelFile]:
    """Real model files, built once per test run (a few seconds)."""
    out = tmp_path_factory.mktemp("model-files")
    files = {
        "a": _tiny(out, "tiny-a", seed=1),
        "b": _tiny(out, "tiny-b", seed=2),
        "silent": _tiny(out, "silent-1", always_break=True),
        "silent2": _tiny(out, "silent-2", always_break=True),
        # The network expects 8-sample windows; this metadata says 40.
        "shape_mismatch": _tiny(out, "tiny-shape", window=40),
    }
    bad = out / "bad"
    bad.mkdir()
    files["no_scaling"] = ModelFile(
        _rewrite_metadata(
            files["a"].path, bad / "no-scaling.keras", lambda m: {k: v for k, v in m.items() if k != "scaling"}
        ),
        "tiny-a",
    )
    files["bad_labels"] = ModelFile(
        _rewrite_metadata(
            files["a"].path,
            bad / "bad-labels.keras",
            lambda m: {**m, "version": "tiny-labels", "labels": [f"x{i}" for i in range(7)]},
        ),
        "tiny-labels",
    )
    files["long_version"] = ModelFile(
        _rewrite_metadata(files["a"].path, bad / "long.keras", lambda m: {**m, "version": "v" * 65}), "v" * 65
    )
    return files


@pytest.fixture(scope="session")
def default_model_file() -> ModelFile:
    """The shipped default model (trained on the Exermote data; it counts real sessions)."""
    if not DEFAULT_KERAS_PATH.exists():
        pytest.skip(f"the shipped model {DEFAULT_KERAS_PATH} is missing (tests/inference reports it)")
    from inference.model import read_metadata

    return ModelFile(DEFAULT_KERAS_PATH, str(read_metadata(DEFAULT_KERAS_PATH)["version"]))


@pytest.fixture
def exermote_files() -> list[Path]:
    files = sorted(EXERMOTE_DIR.glob("*.csv"))
    if not files:
        pytest.skip(f"real Exermote recordings not found at {EXERMOTE_DIR} (../shared is absent)")
    return files


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def staff_api(staff, client_for):
    return client_for(staff)


@pytest.fixture
def register(staff):
    """Register a model file, fully checked at once (``valid``); ``stage="production"`` activates it.

    Its export is queued on commit, which a test's transaction never reaches: the version has
    none (workers load its ``.keras``) unless the test runs ``services.model_version_export``."""

    def _register(model: ModelFile, stage: str | None = None) -> ModelVersion:
        version = services.model_version_create(upload=validate_model_file(model.data), user=staff)
        if stage == "production":
            version = services.model_version_activate(version=version, user=staff)
        elif stage:
            version = services.model_version_set_stage(version=version, stage=stage, user=staff)
        return version

    return _register


@pytest.fixture
def eager_tasks(settings):
    """Celery runs tasks in-process when they are queued (after the commit), errors propagate."""
    from fitness.mlmodels import tasks as registry_tasks
    from fitness.workouts import tasks
    from workers.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = before
    # apply_async caches each task's routing options on first use; forget them, so that a
    # later test that routes a task to a queue of its own (the e2e tests) is obeyed.
    for task in (
        tasks.process_session,
        tasks.shadow_count_session,
        registry_tasks.evaluate_model_version,
        registry_tasks.export_model_version,
        registry_tasks.validate_model_version,
    ):
        task._exec_options = None


def model_channels_csv(seconds: float = 30.0, rate_hz: float = 10.0) -> bytes:
    """A canonical CSV with the channels the models use (a slow oscillation)."""
    from inference.lab.train import MODEL_CHANNELS

    t = np.arange(0, seconds, 1 / rate_hz)
    out = io.StringIO()
    out.write(",".join(["time_s", *MODEL_CHANNELS]) + "\n")
    for ti in t:
        values = [0.3 * np.sin(2 * np.pi * 0.4 * ti + k) for k in range(len(MODEL_CHANNELS))]
        out.write(f"{ti:.3f}," + ",".join(f"{v:.4f}" for v in values) + "\n")
    return out.getvalue().encode()
