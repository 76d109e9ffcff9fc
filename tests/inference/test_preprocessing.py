import numpy as np
import pytest

from inference.preprocessing import (
    DERIVED_CHANNELS,
    Scaler,
    derive_channels,
    resample,
    resample_labels,
    unwrap_angles,
    windows,
)


def test_resample_irregular_to_uniform_grid():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.002, 0.03, size=500))
    t -= t[0]
    x = np.stack([2 * t, np.sin(t)], axis=1)
    grid, y = resample(t, x, 50.0)
    assert np.allclose(np.diff(grid), 0.02)
    assert grid[-1] <= t[-1] + 1e-9
    np.testing.assert_allclose(y[:, 0], 2 * grid, rtol=1e-5, atol=1e-5)
    assert y.dtype == np.float32


def test_resample_labels_takes_the_current_label():
    t = np.array([0.0, 0.1, 0.2, 0.3])
    labels = np.array(["a", "b", "c", "d"])
    assert list(resample_labels(t, labels, np.array([0.0, 0.05, 0.1, 0.29, 0.3]))) == ["a", "a", "b", "c", "d"]


def test_windows_centre_each_sample_and_pad_edges():
    x = np.arange(10, dtype=np.float32)[:, None]
    w = windows(x, window=4, label_offset=2)
    assert w.shape == (10, 4, 1)
    assert list(w[0, :, 0]) == [0, 0, 0, 1]
    assert list(w[5, :, 0]) == [3, 4, 5, 6]
    assert list(w[9, :, 0]) == [7, 8, 9, 9]
    assert windows(x, 4, 2, stride=3).shape == (4, 4, 1)


def test_scaler_round_trip():
    x = np.random.default_rng(1).normal(3, 2, size=(1000, 3)).astype(np.float32)
    s = Scaler.fit(x)
    z = s.transform(x)
    assert z.mean(axis=0) == pytest.approx([0, 0, 0], abs=1e-4)
    assert z.std(axis=0) == pytest.approx([1, 1, 1], abs=1e-3)
    assert Scaler.from_dict(s.to_dict()) == s


def test_angles_are_mapped_to_sine():
    x = np.array([[np.pi / 2, 1.0]], np.float32)
    assert unwrap_angles(x, ("yaw", "gyro_x"))[0].tolist() == pytest.approx([1.0, 1.0])


def _rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_derived_channels_split_vectors_along_and_across_gravity():
    channels = tuple(f"{p}_{a}" for p in ("gravity", "user_acc", "gyro") for a in "xyz")
    x = np.array([[0, 0, -1, 0.3, 0.4, 0.5, 1.0, 0.0, 2.0]], np.float32)  # gravity along -z
    out = derive_channels(x, channels, DERIVED_CHANNELS)
    assert out.shape == (1, 13)
    np.testing.assert_array_equal(out[:, :9], x)
    np.testing.assert_allclose(out[0, 9:], [-0.5, 0.5, -2.0, 1.0], rtol=1e-6)


def test_derived_channels_do_not_depend_on_how_the_phone_is_turned():
    rng = np.random.default_rng(0)
    channels = tuple(f"{p}_{a}" for p in ("gravity", "user_acc", "gyro") for a in "xyz")
    g = rng.normal(size=(50, 3))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    x = np.hstack([g, rng.normal(size=(50, 6))]).astype(np.float32)
    rot = _rotation(rng)
    turned = np.hstack([x[:, i : i + 3] @ rot.T for i in (0, 3, 6)]).astype(np.float32)
    a = derive_channels(x, channels, DERIVED_CHANNELS)[:, 9:]
    b = derive_channels(turned, channels, DERIVED_CHANNELS)[:, 9:]
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.allclose(x[:, 3:6], turned[:, 3:6])


def test_derived_channels_name_what_is_missing():
    channels = ("user_acc_x", "user_acc_y", "user_acc_z")
    with pytest.raises(ValueError, match="gravity_x"):
        derive_channels(np.zeros((3, 3), np.float32), channels, ("user_acc_vertical",))
    with pytest.raises(ValueError, match="unknown derived channel 'gyro_sideways'"):
        derive_channels(np.zeros((3, 3), np.float32), channels, ("gyro_sideways",))
    assert derive_channels(np.ones((2, 3)), channels, ()).shape == (2, 3)
