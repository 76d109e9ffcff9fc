"""Resampling, channel selection, scaling and windowing: pure functions over arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.io import BREAK, Recording


def uniform_grid(time_s: np.ndarray, rate_hz: float) -> np.ndarray:
    """Uniform time grid (s), shape (m,), from ``time_s[0]`` to ``time_s[-1]`` at ``rate_hz``."""
    n = int(np.floor((time_s[-1] - time_s[0]) * rate_hz + 1e-9)) + 1
    return time_s[0] + np.arange(n, dtype=np.float64) / rate_hz


def resample(time_s: np.ndarray, samples: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate irregular samples onto a uniform grid.

    Args:
        time_s: float64, shape (n,), strictly increasing seconds.
        samples: float array, shape (n, c).
        rate_hz: target sample rate (Hz).

    Returns:
        ``(grid_s, resampled)``: shapes (m,) and (m, c) float32, m = duration * rate + 1.
    """
    grid = uniform_grid(time_s, rate_hz)
    # One interpolation per channel; c is small (<= 15) so the loop is not the cost.
    out = np.empty((grid.size, samples.shape[1]), dtype=np.float32)
    for j in range(samples.shape[1]):
        out[:, j] = np.interp(grid, time_s, samples[:, j])
    return grid, out


def resample_labels(time_s: np.ndarray, labels: np.ndarray, grid_s: np.ndarray) -> np.ndarray:
    """Nearest-previous label for each grid time. Shapes (n,), (n,), (m,) -> (m,)."""
    idx = np.searchsorted(time_s, grid_s, side="right") - 1
    return labels[np.clip(idx, 0, len(labels) - 1)]


def unwrap_angles(samples: np.ndarray, channels: tuple[str, ...]) -> np.ndarray:
    """Replace attitude angles (pitch, roll, yaw; rad) by their sine and keep the rest.

    Yaw is a heading with an arbitrary origin that wraps at +-pi; its sine is still
    discontinuity-free for the angles athletes reach and bounded in [-1, 1].
    """
    out = samples.copy()
    for name in ("pitch", "roll", "yaw"):
        if name in channels:
            j = channels.index(name)
            out[:, j] = np.sin(out[:, j])
    return out


@dataclass(frozen=True)
class Scaler:
    """Per-channel standardisation with constants fixed at training time.

    Unlike Exermote's min-max over all data it does not depend on one athlete's range.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, samples: np.ndarray) -> Scaler:
        """Fit on float array (n, c) of training samples."""
        std = samples.std(axis=0)
        return cls(tuple(map(float, samples.mean(axis=0))), tuple(map(float, np.where(std > 1e-6, std, 1.0))))

    def transform(self, samples: np.ndarray) -> np.ndarray:
        """(n, c) -> (n, c) float32 standardised samples."""
        return ((samples - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"kind": "standard", "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        return cls(tuple(d["mean"]), tuple(d["std"]))


def windows(samples: np.ndarray, window: int, label_offset: int, stride: int = 1) -> np.ndarray:
    """One window per labelled sample, as a strided view (no copy).

    The window for sample ``t`` covers ``samples[t - label_offset : t - label_offset + window]``;
    Exermote takes the label 20 samples before the end of a 40-sample window, i.e.
    ``label_offset = window - 20``. The edges are padded by repeating the first/last sample.

    Args:
        samples: float32, shape (n, c).
        window: window length in samples.
        label_offset: index of the labelled sample inside the window.
        stride: step between labelled samples.

    Returns:
        float32 view, shape (ceil(n / stride), window, c).
    """
    pad_before = label_offset
    pad_after = window - label_offset - 1
    padded = np.pad(samples, ((pad_before, pad_after), (0, 0)), mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # (n, c, window)
    return view[::stride].transpose(0, 2, 1)


#: Channels computed from the gravity vector: ``<vector>_vertical`` is the component of the
#: vector along gravity, ``<vector>_horizontal`` the length of the rest (units of the vector).
DERIVED_CHANNELS: tuple[str, ...] = ("user_acc_vertical", "user_acc_horizontal", "gyro_vertical", "gyro_horizontal")


def derive_channels(x: np.ndarray, channels: tuple[str, ...], derived: tuple[str, ...]) -> np.ndarray:
    """Append orientation-free channels to samples; (m, c) float -> (m, c + len(derived)) float32.

    A rotation of the device frame changes every axis but none of these: they describe
    the movement in the athlete's vertical, whatever way the phone sits in its armband.
    (A mirror, i.e. the other arm, flips the sign of ``gyro_vertical``.) Measured on
    Exermote LOSO: fewer repetitions counted in rest, see ``Hyperparameters.derived_channels``.

    Raises:
        ValueError: an unknown derived name, or ``channels`` lacks gravity or the vector.
    """
    if not derived:
        return np.asarray(x, np.float32)
    for name in derived:
        if name not in DERIVED_CHANNELS:
            raise ValueError(f"unknown derived channel {name!r}; known: {', '.join(DERIVED_CHANNELS)}")
    names = list(channels)

    def vector(prefix: str) -> np.ndarray:
        try:
            return x[:, [names.index(f"{prefix}_{axis}") for axis in "xyz"]].astype(np.float64)
        except ValueError:
            raise ValueError(f"deriving channels needs {prefix}_x, {prefix}_y and {prefix}_z") from None

    g = vector("gravity")
    up = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9)
    columns = []
    for name in derived:
        prefix, _, part = name.rpartition("_")
        v = vector(prefix)
        along = (v * up).sum(axis=1)
        columns.append(along if part == "vertical" else np.linalg.norm(v - along[:, None] * up, axis=1))
    return np.column_stack([x, *columns]).astype(np.float32)


def model_input(
    recording: Recording,
    channels: tuple[str, ...],
    rate_hz: float,
    *,
    angle_encoding: str = "sin",
    derived: tuple[str, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Select ``channels``, resample to ``rate_hz``, encode angles and append ``derived`` channels.

    Returns ``(grid_s (m,), x (m, c + len(derived)) float32)``. ``angle_encoding`` is ``raw``
    (radians, as Exermote) or ``sin``. Raises RecordingError when a channel is missing.
    """
    grid, x = resample(recording.time_s, recording.select(channels), rate_hz)
    if angle_encoding == "sin":
        x = unwrap_angles(x, channels)
    return grid, derive_channels(x, channels, tuple(derived))


def phase_labels_on_grid(recording: Recording, grid_s: np.ndarray) -> np.ndarray:
    """Per-grid-sample phase names for a labelled recording, shape (m,)."""
    if recording.labels is None:
        raise ValueError("recording has no labels")
    return resample_labels(recording.time_s, recording.labels, grid_s)


def is_break(label: str) -> bool:
    return label == BREAK
