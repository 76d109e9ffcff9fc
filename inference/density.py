"""The learned repetition counter: a density over time whose sum is the count (issue 28).

A small dilated 1D CNN reads the wrist or arm accelerometer (gravity included, any
orientation) resampled to :data:`GRID_HZ` and outputs a non-negative repetition density per
time step. The count of a stretch is the sum of its density; sets are where the density is.
It was trained from set counts alone (weak labels; ``python -m inference.lab train-counter``)
on CaRa, muvr and Exermote, with random rotations, amplitude and tempo changes and sets joined
to rest, as class-agnostic counters trained from counts are (RepNet, Dwibedi et al., CVPR
2020; CaRaCount and ExRAC for wearables, Nguyen et al., TPAMI 2025).

**Exemplars.** An :class:`Exemplar` is a recording (or a time range of one) holding a known
number of repetitions of the movement to count. The network's density summed over it, against
its known count, says how many density units one repetition of *this* movement is: the
query's density is scaled by that ratio (bounded by :data:`EXEMPLAR_SCALE_BOUNDS`) before
sets are cut and counted, so a movement the network counts twice per repetition (push-ups,
rope double hops) or half is counted as the user's own set shows it. The ratio is a one-number
adaptation, as WeakCounterF adapts to a user from sets labelled only with their count.

The network runs in ONNX Runtime (:class:`inference.runtime.OnnxNetwork`); its
:class:`CounterSpec` travels in the ``.onnx`` file's metadata, as the classifier's spec does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np

from inference.io import Recording
from inference.peak_sets import runs
from inference.preprocessing import resample
from inference.results import CountedSet, CountingError, Repetition

#: Standard gravity (m/s^2).
G = 9.81
#: The network's grid (Hz): above twice the fastest cycle counted (4 Hz), Exermote's own rate;
#: half the training time of 20 Hz (the one 20 Hz trial learned no faster).
GRID_HZ = 10.0
#: Window (s) of the moving mean removed from each axis: the slow part is posture, not movement.
HIGHPASS_S = 2.5
#: Input channels: the high-passed x, y, z acceleration, the high-passed magnitude and the
#: high-passed acceleration along gravity (the last two do not depend on how the device sits),
#: each divided by the local movement level; and that level's logarithm.
N_FEATURES = 6
#: Window (s) of the local movement level (RMS of the high-passed acceleration) the input is
#: divided by, so that typing and boxing reach the network at one scale.
LEVEL_S = 10.0
#: Floor of that level (g): sensor noise and a still wrist's tremor stay small.
LEVEL_FLOOR_G = 0.03
#: Samples the network is run on at once, and the context kept on either side of a chunk:
#: more than half the receptive field (13.1 s), so chunked and whole runs give the same density.
CHUNK = 12_000
CONTEXT = 128
#: Bounds of an exemplar's scale (repetitions per density unit): a movement counted at a third
#: or three times its true rate is still the same movement; beyond, the exemplar is wrong.
EXEMPLAR_SCALE_BOUNDS = (1 / 3, 3.0)
#: Bounds of an exemplar: its repetitions, and its length (s).
EXEMPLAR_MAX_REPS = 500
EXEMPLAR_MIN_S = 1.0
EXEMPLAR_MAX_S = 900.0

#: How a counter file may route a group: its density alone, its density inside the sets of
#: :mod:`inference.generic`, or :mod:`inference.generic` alone.
ROUTES = ("learned", "hybrid", "generic")
#: Seconds added on either side of a generic set before its density is summed (``hybrid``).
HYBRID_MARGIN_S = 1.0

DEFAULT_COUNTER_PATH = Path(__file__).resolve().parent / "models" / "counter.onnx"
SPEC_KEY = "inference_counter.json"


@dataclass(frozen=True)
class CounterSpec:
    """What a counter file says about its input and how its density becomes sets.

    Attributes:
        version: the counter's name in the registry and in counted sets.
        grid_hz: the network's grid (Hz).
        highpass_s: the moving-mean window removed from the input (s).
        min_rate: a time step is in a set when the density, averaged over ``smooth_s``, is at
            least this many repetitions per second.
        smooth_s: that average's window (s).
        set_gap_s: active stretches closer than this (s) are one set.
        min_set_reps: sets counting fewer repetitions are incidental movement, dropped.
        routing: for each exercise group (:func:`exercise_group`), the counter that won on
            held-out folds without and with an exemplar: ``{"exercise": {"plain": "hybrid",
            "exemplar": "learned"}, "unknown": {...}}``, each one of :data:`ROUTES`.
        training: what it was trained on (digest, data, epochs); evaluation: held-out figures.
    """

    version: str
    grid_hz: float = GRID_HZ
    highpass_s: float = HIGHPASS_S
    min_rate: float = 0.15
    smooth_s: float = 3.0
    set_gap_s: float = 6.0
    min_set_reps: int = 3
    routing: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def route(self, exercise: str | None, *, with_exemplar: bool) -> str:
        """What counts ``exercise``: ``learned`` (this counter alone), ``hybrid`` (this counter's
        density summed inside the sets :mod:`inference.generic` finds) or ``generic``."""
        choice = self.routing.get(exercise_group(exercise), {})
        route = choice.get("exemplar" if with_exemplar else "plain", "learned")
        return route if route in ROUTES else "learned"

    @classmethod
    def from_dict(cls, data: dict) -> CounterSpec:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "version" not in known or not isinstance(known["version"], str):
            raise ValueError("the counter spec has no version")
        return cls(**known)


def exercise_group(exercise: str | None) -> str:
    """``unknown`` for no hint or ``unknown``; ``exercise`` for any catalog exercise (gym and calisthenics)."""
    return "unknown" if not exercise or exercise == "unknown" else "exercise"


@dataclass(frozen=True)
class Exemplar:
    """A stretch of recording holding exactly ``reps`` repetitions of the movement to count.

    Raises (on construction):
        ValueError: ``reps`` outside 1..:data:`EXEMPLAR_MAX_REPS`, a stretch shorter than
            :data:`EXEMPLAR_MIN_S` or longer than :data:`EXEMPLAR_MAX_S`, or faster than 10
            repetitions a second.
    """

    recording: Recording
    reps: int

    def __post_init__(self) -> None:
        if not 1 <= self.reps <= EXEMPLAR_MAX_REPS:
            raise ValueError(f"an exemplar holds 1 to {EXEMPLAR_MAX_REPS} repetitions; got {self.reps}")
        duration = self.recording.duration_s
        if not EXEMPLAR_MIN_S <= duration <= EXEMPLAR_MAX_S:
            raise ValueError(
                f"an exemplar lasts {EXEMPLAR_MIN_S:g} to {EXEMPLAR_MAX_S:g} s; this one lasts {duration:.1f} s"
            )
        if self.reps > 10 * duration:
            raise ValueError(f"{self.reps} repetitions in {duration:.1f} s is more than 10 a second")

    @classmethod
    def from_range(cls, recording: Recording, start_s: float, end_s: float, reps: int) -> Exemplar:
        """The part of ``recording`` from ``start_s`` to ``end_s`` (seconds from its first sample)."""
        t = recording.time_s - recording.time_s[0]
        keep = (t >= start_s) & (t <= end_s)
        if keep.sum() < 2:
            raise ValueError(f"the exemplar range {start_s:.2f}-{end_s:.2f} s holds fewer than two samples")
        part = Recording(
            time_s=recording.time_s[keep],
            samples=recording.samples[keep],
            channels=recording.channels,
            source_format=recording.source_format,
        )
        return cls(part, reps)


def can_count(channels) -> bool:
    """True when the learned counter can read the recording: three accelerometer axes."""
    present = set(channels)
    return {"acc_x", "acc_y", "acc_z"} <= present or {"user_acc_x", "user_acc_y", "user_acc_z"} <= present


def acceleration(recording: Recording) -> np.ndarray:
    """(n, 3) float64 acceleration in m/s^2, gravity included.

    ``acc_*`` as they are; ``user_acc_*`` (g) plus ``gravity_*`` when present, times :data:`G`.

    Raises:
        CountingError: no three-axis accelerometer.
    """
    if {"acc_x", "acc_y", "acc_z"} <= set(recording.channels):
        return recording.select(("acc_x", "acc_y", "acc_z")).astype(np.float64)
    user = ("user_acc_x", "user_acc_y", "user_acc_z")
    if not set(user) <= set(recording.channels):
        raise CountingError(
            "the learned counter needs a three-axis accelerometer (acc_x/y/z or user_acc_x/y/z); the recording has "
            + ", ".join(recording.channels)
        )
    x = recording.select(user).astype(np.float64)
    gravity = ("gravity_x", "gravity_y", "gravity_z")
    if recording.has_channels(gravity):
        x = x + recording.select(gravity).astype(np.float64)
    return x * G


def moving_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving mean of (m, ...) ``x`` along axis 0 over ``width`` samples (shorter at the ends)."""
    m = x.shape[0]
    half = max(1, width // 2)
    c = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
    hi = np.minimum(np.arange(m) + half + 1, m)
    lo = np.maximum(np.arange(m) - half, 0)
    shape = (m,) + (1,) * (x.ndim - 1)
    return (c[hi] - c[lo]) / (hi - lo).reshape(shape)


def features(acc: np.ndarray, fs: float, highpass_s: float = HIGHPASS_S) -> np.ndarray:
    """(m, 3) acceleration (m/s^2) on a grid at ``fs`` Hz -> (m, :data:`N_FEATURES`) float32 network input.

    Each axis and the magnitude in g, with their ``highpass_s`` moving mean removed, and the
    high-passed acceleration projected on the moving mean's direction (gravity); all five divided
    by the local movement level (the RMS of the high-passed axes over :data:`LEVEL_S`, at least
    :data:`LEVEL_FLOOR_G`), whose natural logarithm is the sixth channel.
    """
    a = acc / G
    mag = np.linalg.norm(a, axis=1, keepdims=True)
    x = np.concatenate([a, mag], axis=1)
    width = max(2, round(highpass_s * fs))
    slow = moving_mean(x, width)
    hp = x - slow
    norm = np.linalg.norm(slow[:, :3], axis=1, keepdims=True)
    down = np.divide(slow[:, :3], norm, out=np.zeros_like(slow[:, :3]), where=norm > 0)
    vertical = np.sum(hp[:, :3] * down, axis=1, keepdims=True)
    power = moving_mean(np.sum(hp[:, :3] ** 2, axis=1, keepdims=True), max(2, round(LEVEL_S * fs)))
    level = np.maximum(np.sqrt(np.maximum(power, 0.0)), LEVEL_FLOOR_G)
    return np.concatenate([hp / level, vertical / level, np.log(level)], axis=1).astype(np.float32)


def counter_input(recording: Recording, spec: CounterSpec) -> np.ndarray:
    """The network's input for a recording: (m, :data:`N_FEATURES`) float32 on ``spec.grid_hz``.

    Raises:
        CountingError: no three-axis accelerometer.
    """
    acc = acceleration(recording)
    _, grid = resample(recording.time_s, acc, spec.grid_hz)
    return features(grid.astype(np.float64), spec.grid_hz, spec.highpass_s)


def run_chunked(network, x: np.ndarray) -> np.ndarray:
    """Density (m,) float64 of input (m, c) from ``network`` ((1, t, c) -> (1, t)), :data:`CHUNK` steps at a time."""
    m = x.shape[0]
    out = np.empty(m, dtype=np.float64)
    for start in range(0, m, CHUNK):
        stop = min(m, start + CHUNK)
        lo, hi = max(0, start - CONTEXT), min(m, stop + CONTEXT)
        d = np.asarray(network(x[None, lo:hi]), dtype=np.float64).reshape(-1)
        out[start:stop] = d[start - lo : start - lo + stop - start]
    return np.maximum(out, 0.0)


def set_ranges(density: np.ndarray, spec: CounterSpec) -> list[tuple[int, int]]:
    """(start, stop) sample ranges of the sets in a (scaled) density on ``spec.grid_hz``.

    Steps whose density averaged over ``smooth_s`` reaches ``min_rate`` repetitions per second
    are active; active runs closer than ``set_gap_s`` are joined.
    """
    fs = spec.grid_hz
    rate = moving_mean(density, max(1, round(spec.smooth_s * fs))) * fs
    active = runs(rate >= spec.min_rate)
    joined: list[list[int]] = []
    for a, b in active:
        if joined and a - joined[-1][1] < spec.set_gap_s * fs:
            joined[-1][1] = b
        else:
            joined.append([a, b])
    return [(a, b) for a, b in joined]


def density_sets(density: np.ndarray, spec: CounterSpec, *, exercise: str, method: str = "learned") -> list[CountedSet]:
    """Sets and repetitions of a (scaled) density: each set counts its density's sum, rounded.

    Repetition ``i`` of a set of ``n`` spans the steps where the set's cumulative density
    runs from ``i / n`` to ``(i + 1) / n`` of its sum. Times are seconds from the grid's first step.
    """
    fs = spec.grid_hz
    out: list[CountedSet] = []
    for a, b in set_ranges(density, spec):
        d = density[a:b]
        total = float(d.sum())
        n = int(np.floor(total + 0.5))
        if n < spec.min_set_reps:
            continue
        bounds = _split(d, n, a)
        reps = [Repetition(lo / fs, max(hi, lo + 1) / fs) for lo, hi in pairwise(bounds)]
        out.append(CountedSet(exercise=exercise, method=method, repetitions=tuple(reps)))
    return out


class DensityCounter:
    """A learned counter file (``.onnx`` with a :class:`CounterSpec`) in an ONNX Runtime session.

    The spec is read at once (protobuf only); the session starts on the first count, so a
    process whose routing never reaches the learned counter never loads ONNX Runtime for it.

    Raises:
        ValueError: the file carries no counter spec (on construction); onnxruntime's errors for
            a file it cannot run (on the first count).
    """

    def __init__(self, path: str | Path) -> None:
        from inference.runtime import read_onnx_json

        self.path = Path(path)
        self.spec = CounterSpec.from_dict(read_onnx_json(self.path, SPEC_KEY))
        self._network = None

    @property
    def network(self):
        """The ONNX Runtime session's callable, started on first use."""
        if self._network is None:
            from inference.runtime import OnnxNetwork

            self._network = OnnxNetwork(self.path)
        return self._network

    @classmethod
    def from_network(cls, network, spec: CounterSpec) -> DensityCounter:
        """A counter around any callable float32 (1, t, N_FEATURES) -> (1, t) (a Keras network in the lab)."""
        counter = cls.__new__(cls)
        counter.path, counter.spec, counter._network = None, spec, network
        return counter

    def density(self, recording: Recording) -> np.ndarray:
        """Repetitions per grid step, (m,) float64 >= 0, step ``i`` at ``i / grid_hz`` s from the first sample.

        Raises:
            CountingError: no three-axis accelerometer.
        """
        return run_chunked(self.network, counter_input(recording, self.spec))

    def exemplar_scale(self, exemplar: Exemplar) -> float:
        """Repetitions per density unit in the exemplar, within :data:`EXEMPLAR_SCALE_BOUNDS`.

        Raises:
            CountingError: the exemplar has no three-axis accelerometer.
        """
        return scale_for(self.density(exemplar.recording), exemplar.reps)

    def count(
        self, recording: Recording, *, exercise: str = "unknown", exemplar: Exemplar | None = None
    ) -> tuple[CountedSet, ...]:
        """Count the repetitions in a recording, optionally as an exemplar shows them.

        Args:
            recording: three accelerometer axes (``acc_*`` m/s^2 or ``user_acc_*`` g), 10-200 Hz.
            exercise: written into the sets.
            exemplar: a stretch holding a known count of the movement to count, or None.

        Returns:
            One ``CountedSet(method="learned")`` per set, repetitions in seconds from the first sample.

        Raises:
            CountingError: no three-axis accelerometer in the recording or the exemplar.
        """
        scale = 1.0 if exemplar is None else self.exemplar_scale(exemplar)
        sets = density_sets(self.density(recording) * scale, self.spec, exercise=exercise)
        t0 = float(recording.time_s[0])
        return tuple(
            CountedSet(
                s.exercise,
                s.method,
                tuple(Repetition(r.start_s + t0, r.end_s + t0) for r in s.repetitions),
                used_exemplar=exemplar is not None,
            )
            for s in sets
        )

    def count_in_sets(
        self, recording: Recording, sets: tuple[CountedSet, ...], *, exemplar: Exemplar | None = None
    ) -> tuple[CountedSet, ...]:
        """Re-count the sets another counter found (``hybrid``): each set, widened by
        :data:`HYBRID_MARGIN_S`, counts its (scaled) density's sum, rounded; sets of 0 are dropped.

        Args:
            recording: as for :meth:`count`. sets: in seconds from the recording's first sample
                plus its first timestamp (as :func:`inference.generic.count_generic` returns them).

        Raises:
            CountingError: no three-axis accelerometer in the recording or the exemplar.
        """
        scale = 1.0 if exemplar is None else self.exemplar_scale(exemplar)
        density = self.density(recording) * scale
        fs, t0 = self.spec.grid_hz, float(recording.time_s[0])
        ranges = [(found.start_s - t0, found.end_s - t0) for found in sets]
        out = []
        for found, (a, b, n) in zip(sets, counts_in_ranges(density, ranges, fs), strict=True):
            if n < 1:
                continue
            bounds = _split(density[a:b], n, a)
            reps = tuple(Repetition(lo / fs + t0, max(hi, lo + 1) / fs + t0) for lo, hi in pairwise(bounds))
            out.append(CountedSet(found.exercise, "learned", reps, used_exemplar=exemplar is not None))
        return tuple(out)


def scale_for(density: np.ndarray, reps: int) -> float:
    """An exemplar's repetitions per unit of its density's sum, within :data:`EXEMPLAR_SCALE_BOUNDS`."""
    lo, hi = EXEMPLAR_SCALE_BOUNDS
    total = float(density.sum())
    return hi if total <= 0 else float(np.clip(reps / total, lo, hi))


def counts_in_ranges(density: np.ndarray, ranges_s, fs: float) -> list[tuple[int, int, int]]:
    """``(start, stop, count)`` per (start_s, end_s) range (seconds from the grid's first step):
    the steps of the range widened by :data:`HYBRID_MARGIN_S` and their density's sum, rounded."""
    out = []
    for start_s, end_s in ranges_s:
        a = max(0, int((start_s - HYBRID_MARGIN_S) * fs))
        b = min(density.size, int(np.ceil((end_s + HYBRID_MARGIN_S) * fs)))
        out.append((a, b, int(np.floor(float(density[a:b].sum()) + 0.5))))
    return out


def _split(d: np.ndarray, n: int, offset: int) -> list[int]:
    """Step indices (from ``offset``) cutting density ``d`` into ``n`` parts of equal sum."""
    cum = np.concatenate([[0.0], np.cumsum(d)])
    edges = np.searchsorted(cum, np.linspace(0.0, float(cum[-1]), n + 1)[1:-1])
    return [offset, *(offset + int(e) for e in edges), offset + d.size]


@lru_cache(maxsize=2)
def load_counter_cached(path: str | Path = DEFAULT_COUNTER_PATH) -> DensityCounter:
    """One :class:`DensityCounter` per file per process."""
    return DensityCounter(path)


def default_counter() -> DensityCounter | None:
    """The shipped counter, or None where its file is absent."""
    if not DEFAULT_COUNTER_PATH.is_file():
        return None
    return load_counter_cached(DEFAULT_COUNTER_PATH)
