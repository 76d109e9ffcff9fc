import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from inference.counting import CountingParams
from inference.model import (
    DEFAULT_MODEL_PATH,
    MAX_METADATA_BYTES,
    METADATA_ENTRY,
    ModelFileError,
    build_network,
    load_model,
    load_model_bytes,
    read_spec,
    save_model,
)
from inference.preprocessing import DERIVED_CHANNELS, Scaler
from inference.spec import ModelSpec

PHASE_LABELS = (
    "break",
    "burpee.first_half", "burpee.second_half",
    "squat.first_half", "squat.second_half",
    "sit_up.first_half", "sit_up.second_half",
)  # fmt: skip
CHANNELS = tuple(f"{s}_{a}" for s in ("gravity", "user_acc", "gyro") for a in "xyz")
INPUT_CHANNELS = CHANNELS + DERIVED_CHANNELS


def tiny_spec(**changes) -> ModelSpec:
    """A window model's spec over the phone's nine channels and the four derived ones."""
    n = len(INPUT_CHANNELS)
    spec = ModelSpec(
        version="tiny-1",
        architecture="window",
        channels=CHANNELS,
        derived_channels=DERIVED_CHANNELS,
        sample_rate_hz=10.0,
        window=8,
        label_offset=4,
        labels=PHASE_LABELS,
        angle_encoding="sin",
        scaling=Scaler((0.0,) * n, (1.0,) * n),
        counting=CountingParams(),
        training_data_digest="digest",
        hyperparameters={"epochs": 1},
    )
    return replace(spec, **changes)


def write_model_file(network, metadata: dict, path):
    """A model file with exactly ``metadata`` (valid or not), as another tool could write it."""
    network.save(path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(METADATA_ENTRY, json.dumps(metadata))
    return path


def tiny_model(tmp_path, **meta_overrides):
    spec = tiny_spec()
    network = build_network(spec.window, len(INPUT_CHANNELS), len(PHASE_LABELS), conv_filters=4, lstm_units=4)
    meta = {**spec.to_dict(), **meta_overrides}
    return write_model_file(network, meta, tmp_path / "m.keras"), meta


def test_save_and_load_keep_the_spec(tmp_path):
    spec = tiny_spec()
    network = build_network(spec.window, len(INPUT_CHANNELS), len(PHASE_LABELS), conv_filters=4, lstm_units=4)
    model = load_model(save_model(network, spec, tmp_path / "m.keras"))
    assert model.spec == spec
    assert read_spec(tmp_path / "m.keras") == spec
    assert model.spec.exercises == ("burpee", "sit_up", "squat")
    probs = model.predict(np.zeros((3, 8, len(INPUT_CHANNELS)), np.float32))
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert len(model.checksum) == 64
    assert model.spec.input_channels == INPUT_CHANNELS


def test_a_model_file_without_derived_channels_reads_its_channels_only(tmp_path):
    spec = tiny_spec(derived_channels=(), scaling=Scaler((0.0,) * 9, (1.0,) * 9))
    network = build_network(spec.window, len(CHANNELS), len(PHASE_LABELS), conv_filters=4, lstm_units=4)
    meta = spec.to_dict()
    del meta["derived_channels"], meta["architecture"]  # files written before either existed
    model = load_model(write_model_file(network, meta, tmp_path / "old.keras"))
    assert model.spec.input_channels == model.spec.channels == CHANNELS
    assert model.spec.architecture == "window"


def test_a_metadata_bomb_is_refused_from_the_zip_directory(tmp_path):
    path, _ = tiny_model(tmp_path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inference_metadata.json", b" " * (MAX_METADATA_BYTES + 1))  # the later entry wins
    with pytest.raises(ModelFileError, match="inflates to"):
        read_spec(path)


def test_a_weights_bomb_is_refused_from_the_zip_directory(tmp_path, monkeypatch):
    path, _ = tiny_model(tmp_path)
    monkeypatch.setattr("inference.model.MAX_INFLATED_BYTES", 1 << 25)  # 32 MiB, to keep the test cheap
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("model.weights.h5.pad", "w") as fh,
    ):
        for _ in range(3):
            fh.write(bytes(1 << 24))
    with pytest.raises(ModelFileError, match="inflates to"):
        read_spec(path)


def test_metadata_that_disagrees_with_the_network_is_refused(tmp_path):
    path, _ = tiny_model(tmp_path, window=40)
    with pytest.raises(ModelFileError, match="input"):
        load_model(path)


def test_counting_parameters_the_state_machine_cannot_use_are_refused(tmp_path):
    path, _ = tiny_model(tmp_path, counting={**CountingParams().to_dict(), "break_weight": 0.0})
    with pytest.raises(ModelFileError, match="counting: break_weight must be positive"):
        load_model(path)
    path, _ = tiny_model(tmp_path, counting="viterbi")
    with pytest.raises(ModelFileError, match="counting"):
        load_model(path)


def test_truncated_or_foreign_files_are_refused(tmp_path):
    path, _ = tiny_model(tmp_path)
    data = path.read_bytes()
    with pytest.raises(ModelFileError):
        load_model_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load_model_bytes(b"PK\x03\x04 not really a zip")


def test_the_shipped_model_carries_complete_metadata():
    if not DEFAULT_MODEL_PATH.exists():
        pytest.fail(f"the default model {DEFAULT_MODEL_PATH} is missing: run `python -m inference.lab train`")
    spec = read_spec(DEFAULT_MODEL_PATH)
    assert spec.sample_rate_hz == 10.0
    assert spec.architecture in ("window", "sequence")
    assert spec.window > 0
    assert spec.labels == PHASE_LABELS
    assert len(spec.training_data_digest) == 64
    assert spec.evaluation["overall"]["sets_within_1"] >= 0.9


def test_sequence_model_labels_every_sample_like_one_pass(tmp_path):
    from inference.model import build_sequence_network

    spec = tiny_spec(architecture="sequence", window=64, chunk=50, context=20)
    network = build_sequence_network(len(INPUT_CHANNELS), len(PHASE_LABELS), conv_filters=4, lstm_units=4)
    model = load_model(save_model(network, spec, tmp_path / "seq.keras"))
    assert model.spec.is_sequence
    x = np.random.default_rng(0).normal(size=(437, len(INPUT_CHANNELS))).astype(np.float32)
    chunked = model.phase_probabilities(x)
    assert chunked.shape == (437, 7)
    one_pass = np.asarray(network(x[None], training=False))[0]
    # Inside a chunk, 20 samples of context on each side make it see what one pass sees.
    np.testing.assert_allclose(chunked[60:90], one_pass[60:90], atol=0.02)
    np.testing.assert_allclose(chunked.sum(axis=1), 1.0, rtol=1e-5)
