"""The original Exermote app's method, as a baseline on the same LOSO folds.

Source: Lerner 2017, ``Lausbert/Exermote`` (``ExermotePreprocessingAndTraining`` and the
iOS app), as summarised in ``../shared/data/exermote/README.md``:

- a 4-class CNN-LSTM (break / burpee / squat / sit_up) on the 12 iPhone channels with
  min-max scaling over the training data, RMSprop, window 40, label 20 samples before
  the window's end;
- counting: a repetition is counted once the same exercise has been predicted for
  15 (burpee), 5 (squat) or 10 (sit-up) consecutive steps after a break.
"""

from __future__ import annotations

import numpy as np

from inference.counting import group_sets, runs
from inference.io import EXERMOTE_CHANNELS
from inference.lab.train import Hyperparameters, Labelled
from inference.model import build_network
from inference.preprocessing import windows
from inference.results import CountedSet

CLASSES: tuple[str, ...] = ("break", "burpee", "squat", "sit_up")
#: Consecutive predictions that count one repetition in the original app.
THRESHOLDS: dict[str, int] = {"burpee": 15, "squat": 5, "sit_up": 10}
BASELINE_HP = Hyperparameters(
    architecture="window",
    window=40,
    channels=EXERMOTE_CHANNELS,
    derived_channels=(),
    angle_encoding="raw",
    augment_copies=0,
    train_stride=2,
)


def to_four_class(y: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """Phase indices (n,) -> 4-class indices (n,) in ``CLASSES`` order."""
    lut = np.array([CLASSES.index(name.split(".")[0]) for name in labels])
    return lut[y]


class MinMaxScaler:
    """Exermote's scaling: min-max over all training samples, per channel, to [0, 1]."""

    def __init__(self, x: np.ndarray) -> None:
        self.lo = x.min(axis=0)
        self.span = np.maximum(x.max(axis=0) - self.lo, 1e-6)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.lo) / self.span).astype(np.float32)


def fit_baseline(prepared: list[Labelled], *, epochs: int = 20, seed: int = 0):
    """Train the 4-class network. Returns ``(network, scaler)``."""
    import keras

    hp = BASELINE_HP
    keras.utils.set_random_seed(seed)
    scaler = MinMaxScaler(np.concatenate([p.x for p in prepared]))
    x = np.concatenate([windows(scaler.transform(p.x), hp.window, hp.label_offset, hp.train_stride) for p in prepared])
    y = np.concatenate([to_four_class(p.y, hp.labels)[:: hp.train_stride] for p in prepared])
    network = build_network(hp.window, len(hp.channels), len(CLASSES))
    network.compile(optimizer=keras.optimizers.RMSprop(), loss="sparse_categorical_crossentropy")
    network.fit(x, y, batch_size=100, epochs=epochs, shuffle=True, verbose=0)
    return network, scaler


def count_consecutive(pred4: np.ndarray, rate_hz: float, set_gap_s: float) -> tuple[CountedSet, ...]:
    """The app's counting rule on 4-class predictions (n,): one repetition per run of one
    exercise reaching its threshold, re-armed by a break prediction."""
    reps, armed = [], True
    for value, start, stop in runs(pred4):
        name = CLASSES[int(value)]
        if name == "break":
            armed = True
        elif armed and stop - start >= THRESHOLDS[name]:
            reps.append((name, start, stop))
            armed = False
    return group_sets(reps, rate_hz, set_gap_s, method="classifier")
