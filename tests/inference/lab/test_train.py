from dataclasses import replace

import numpy as np
import pytest

from inference.lab.train import (
    AXIS_FLIPS,
    PHASE_LABELS,
    Hyperparameters,
    augment,
    average_networks,
    build_spec,
    fit,
    time_warp,
)
from inference.model import load_model, save_model
from inference.preprocessing import derive_channels
from inference.scoring import Labelled


def synthetic_prepared(n=600, subject="1"):
    """A squat-like recording: the first half moves one way, the second half back."""
    rng = np.random.default_rng(int(subject))
    y = np.zeros(n, np.int64)
    for start in range(30, n - 40, 40):
        y[start : start + 10] = PHASE_LABELS.index("squat.first_half")
        y[start + 10 : start + 20] = PHASE_LABELS.index("squat.second_half")
    x = rng.normal(scale=0.05, size=(n, 9)).astype(np.float32)
    x[:, 1] -= 1.0  # gravity along -y
    x[y == 3, 3] += 0.5
    x[y == 4, 3] -= 0.5
    set_break = np.zeros(n, bool)
    set_break[:20] = True
    return Labelled(x=x, y=y, labels=np.asarray(PHASE_LABELS)[y], set_break=set_break, subject=subject)


@pytest.mark.parametrize("architecture", ["window", "sequence"])
def test_fit_returns_a_network_scaler_and_counting_params(architecture):
    window = 64 if architecture == "sequence" else 40
    hp = replace(Hyperparameters(), architecture=architecture, window=window, epochs=1, augment_copies=1, ensemble=1)
    network, scaler, params = fit([synthetic_prepared(), synthetic_prepared(subject="2")], hp)
    assert len(scaler.mean) == 13  # 9 channels and 4 derived from them
    assert params.min_run_s["squat.first_half"] == pytest.approx(0.5)
    shape = (1, hp.window, 13)
    out = np.asarray(network(np.zeros(shape, np.float32), training=False))
    assert out.shape[-1] == 7


def test_augment_flips_vectors_and_treats_the_gyroscope_as_a_pseudovector():
    hp = replace(Hyperparameters(), augment_rotation_deg=0.0, augment_scale=0.0)
    x = np.tile(np.arange(1, 10, dtype=np.float32), (5, 1))
    mirror = AXIS_FLIPS[[np.linalg.det(f) < 0 for f in AXIS_FLIPS].index(True)]
    out = augment(x, hp.channels, np.random.default_rng(0), hp, flip=mirror)
    signs = np.diag(mirror)
    np.testing.assert_allclose(out[0, :3], signs * x[0, :3], atol=1e-6)  # gravity
    np.testing.assert_allclose(out[0, 3:6], signs * x[0, 3:6], atol=1e-6)  # user acceleration
    np.testing.assert_allclose(out[0, 6:9], -signs * x[0, 6:9], atol=1e-6)  # gyro: det = -1


def test_an_ensemble_averages_its_members_and_survives_save_and_load(tmp_path):
    hp = replace(Hyperparameters(), window=64, epochs=1, augment_copies=0, ensemble=2)
    data = [synthetic_prepared(), synthetic_prepared(subject="2")]
    network, scaler, params = fit(data, hp)
    members = [layer for layer in network.layers if hasattr(layer, "layers")]
    assert len(members) == 2
    x = scaler.transform(derive_channels(data[0].x, hp.channels, hp.derived_channels))[None]
    outs = [np.asarray(m(x, training=False)) for m in members]
    assert not np.allclose(outs[0], outs[1])  # different seeds, different networks
    np.testing.assert_allclose(np.asarray(network(x, training=False)), np.mean(outs, axis=0), atol=1e-6)

    spec = build_spec(hp, scaler=scaler, params=params, digest="d", subjects=["1", "2"])
    model = load_model(save_model(network, spec, tmp_path / "ensemble.keras"))
    assert model.spec == spec
    np.testing.assert_allclose(np.asarray(model.network(x, training=False)), np.mean(outs, axis=0), atol=1e-5)
    assert model.phase_probabilities(x[0]).shape == (600, 7)


def test_average_networks_of_one_member_is_that_member():
    hp = replace(Hyperparameters(), window=64, epochs=1, augment_copies=0, ensemble=1)
    network, scaler, _ = fit([synthetic_prepared()], hp)
    x = scaler.transform(derive_channels(synthetic_prepared().x, hp.channels, hp.derived_channels))[None]
    np.testing.assert_allclose(np.asarray(average_networks([network, network])(x)), np.asarray(network(x)), atol=1e-6)


def test_time_warp_changes_the_tempo_and_keeps_labels_with_their_samples():
    data = synthetic_prepared(n=1000)
    hp = Hyperparameters()
    x, y = time_warp(data.x, data.y, hp.channels, np.random.default_rng(0), 0.2)
    assert len(x) == len(y)
    assert 1000 / 1.2 <= len(x) <= 1000 / 0.8
    assert set(np.unique(y)) == set(np.unique(data.y))
    # the squat first half is marked by +0.5 on user_acc_x: labels still sit on it
    first = y == PHASE_LABELS.index("squat.first_half")
    assert x[first, 3].mean() > 0.3
    assert x[~first, 3].mean() < 0.1
    same = time_warp(data.x, data.y, hp.channels, np.random.default_rng(0), 0.0)
    assert same[0] is data.x
