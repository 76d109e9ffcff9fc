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


def hp_channels():
    return Hyperparameters().input_channels


def tiny_model(tmp_path, **meta_overrides):
    hp = Hyperparameters(architecture="window", window=8, label_offset=4, epochs=1, ensemble=1)
    network = build_network(hp.window, len(hp.input_channels), len(hp.labels), conv_filters=4, lstm_units=4)
    scaler = Scaler(tuple([0.0] * len(hp.input_channels)), tuple([1.0] * len(hp.input_channels)))
    meta = build_metadata(hp, scaler=scaler, params=CountingParams(), digest="digest", subjects=["1"], evaluation=None)
    meta.update(meta_overrides)
    return save_model(network, meta, tmp_path / "m.keras"), meta


def test_save_and_load_keep_metadata(tmp_path):
    path, meta = tiny_model(tmp_path)
    model = load_model(path)
    assert model.metadata == meta
    assert model.labels == PHASE_LABELS
    assert model.exercises == ("burpee", "sit_up", "squat")
    probs = model.predict(np.zeros((3, 8, len(hp_channels())), np.float32))
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert len(model.checksum) == 64
    assert model.input_channels == hp_channels()
    assert model.derived_channels == ("user_acc_vertical", "user_acc_horizontal", "gyro_vertical", "gyro_horizontal")


def test_a_model_file_without_derived_channels_reads_its_channels_only(tmp_path):
    hp = Hyperparameters(architecture="window", window=8, label_offset=4, derived_channels=(), ensemble=1)
    network = build_network(hp.window, len(hp.channels), len(hp.labels), conv_filters=4, lstm_units=4)
    scaler = Scaler(tuple([0.0] * len(hp.channels)), tuple([1.0] * len(hp.channels)))
    meta = build_metadata(hp, scaler=scaler, params=CountingParams(), digest="d", subjects=["1"], evaluation=None)
    del meta["derived_channels"]  # files written before derived channels existed
    model = load_model(save_model(network, meta, tmp_path / "old.keras"))
    assert model.input_channels == model.channels == hp.channels


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
        pytest.fail(f"the default model {DEFAULT_MODEL_PATH} is missing: run `python -m inference train`")
    meta = read_metadata(DEFAULT_MODEL_PATH)
    assert meta["sample_rate_hz"] == 10.0
    assert meta["architecture"] in ("window", "sequence")
    assert meta["window"] > 0
    assert meta["labels"] == list(PHASE_LABELS)
    assert len(meta["training_data_digest"]) == 64
    assert meta["evaluation"]["overall"]["sets_within_1"] >= 0.9


def test_sequence_model_labels_every_sample_like_one_pass(tmp_path):
    from dataclasses import replace

    from inference.model import build_sequence_network

    hp = replace(Hyperparameters(), architecture="sequence", window=64, chunk=50, context=20)
    network = build_sequence_network(len(hp.input_channels), len(hp.labels), conv_filters=4, lstm_units=4)
    scaler = Scaler(tuple([0.0] * len(hp.input_channels)), tuple([1.0] * len(hp.input_channels)))
    meta = build_metadata(hp, scaler=scaler, params=CountingParams(), digest="d", subjects=["1"], evaluation=None)
    model = load_model(save_model(network, meta, tmp_path / "seq.keras"))
    assert model.is_sequence
    x = np.random.default_rng(0).normal(size=(437, len(hp.input_channels))).astype(np.float32)
    chunked = model.phase_probabilities(x)
    assert chunked.shape == (437, 7)
    one_pass = np.asarray(network(x[None], training=False))[0]
    # Inside a chunk, 20 samples of context on each side make it see what one pass sees.
    np.testing.assert_allclose(chunked[60:90], one_pass[60:90], atol=0.02)
    np.testing.assert_allclose(chunked.sum(axis=1), 1.0, rtol=1e-5)
