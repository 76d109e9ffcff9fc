import numpy as np
import pytest

from inference.counting import CountingParams
from inference.model import (
    DEFAULT_MODEL_PATH,
    ModelFileError,
    build_network,
    load_model,
    load_model_bytes,
    read_metadata,
    save_model,
)
from inference.preprocessing import Scaler
from inference.train import PHASE_LABELS, Hyperparameters, build_metadata


def tiny_model(tmp_path, **meta_overrides):
    hp = Hyperparameters(window=8, label_offset=4, epochs=1)
    network = build_network(hp.window, len(hp.channels), len(hp.labels), conv_filters=4, lstm_units=4)
    scaler = Scaler(tuple([0.0] * 12), tuple([1.0] * 12))
    meta = build_metadata(hp, scaler, CountingParams(), "digest", ["1"], None)
    meta.update(meta_overrides)
    return save_model(network, meta, tmp_path / "m.keras"), meta


def test_save_and_load_keep_metadata(tmp_path):
    path, meta = tiny_model(tmp_path)
    model = load_model(path)
    assert model.metadata == meta
    assert model.labels == PHASE_LABELS
    assert model.exercises == ("burpee", "sit_up", "squat")
    probs = model.predict(np.zeros((3, 8, 12), np.float32))
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert len(model.checksum) == 64


def test_metadata_that_disagrees_with_the_network_is_refused(tmp_path):
    path, _ = tiny_model(tmp_path, window=40)
    with pytest.raises(ModelFileError, match="input"):
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
        pytest.fail(f"the default model {DEFAULT_MODEL_PATH} is missing: run `python -m inference train`")
    meta = read_metadata(DEFAULT_MODEL_PATH)
    assert meta["sample_rate_hz"] == 10.0
    assert meta["window"] == 40
    assert meta["labels"] == list(PHASE_LABELS)
    assert len(meta["training_data_digest"]) == 64
    assert meta["evaluation"]["overall"]["sets_within_1"] >= 0.9
