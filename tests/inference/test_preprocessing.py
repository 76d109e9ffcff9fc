import numpy as np
import pytest

from inference.preprocessing import Scaler, resample, resample_labels, unwrap_angles, windows


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
