"""The generic repetition counter: any repetitive movement, from any wrist or arm sensor.

Counts the cycles of a movement the classifier does not know, from an accelerometer
(``acc_*`` or ``user_acc_*``), a gyroscope (``gyro_*``) or both, one to three axes each,
at 10-200 Hz. Returns one :class:`CountedSet` per burst of cycles, one
:class:`Repetition` per cycle. Nothing in it is fitted to an exercise, except the choice
of sensor for jump rope. It still counts peaks (of a band-limited projection), so its
results keep the method name ``peaks``.

Method (self-similarity counting as in RecoFit, Morris et al., CHI 2014; the single most
periodic axis, Mortazavi et al., BSN 2014; CaRa, Nguyen et al., TPAMI 2025, for the data):

1. **Grid.** Samples are linearly interpolated onto a uniform grid at ``GRID_HZ`` (or the
   recording's mean rate when lower); movement cycles are under 4 Hz.
2. **Sensor.** ``jump_rope`` uses the gyroscope when present (the wrist turns once per rope
   turn while the acceleration shows every hop). Otherwise the sensor whose broad-band
   (``BROAD_BAND_HZ``) signal is the most periodic over the whole recording is used.
3. **Local periodicity instead of an energy threshold.** In windows of ``WINDOW_S`` every
   ``HOP_S``, the autocorrelation of each axis (normalised at lag 0; the axis with the
   highest peak kept, ``AC_MODE`` "axes") gives the window's periodicity (highest peak
   between ``MIN_PERIOD_S`` and ``MAX_PERIOD_S``) and its RMS. A window is active when its
   periodicity reaches ``MIN_PERIODICITY`` and its RMS the
   sensor noise floor ``NOISE_FLOOR`` and ``MIN_REL_RMS`` of the recording's most active
   windows. A set that fills the recording is found (no rest is needed to contrast it
   with); rest, and irregular movement (fiddling, walking between machines with changing
   steps), is not periodic and is not counted.
4. **Per active segment** (active windows merged): the period ``T`` is the shortest
   autocorrelation peak within ``PEAK_SHARE`` of the highest (so a cycle of two similar
   halves is not counted twice as slow); the segment is band-passed to
   ``[f0 / BAND_RATIO, f0 * BAND_RATIO]``, ``f0 = 1 / T``, and projected on its first
   principal component (the direction of most periodic energy, whatever the watch's
   orientation). Peaks at least ``MIN_DISTANCE * T`` apart with a prominence of at least
   ``MIN_PROMINENCE`` of the projection's typical peak are cycles, counted on the polarity
   with the larger peaks.
   A peak is kept only when its cycle (one period of the broad-band axes centred on it)
   correlates with a neighbouring cycle at ``MIN_CYCLE_SIMILARITY`` or more, with a size
   within ``CYCLE_SIZE_RATIO``: a gesture between repetitions does not repeat.
5. **Sets.** Cycles further apart than ``SET_GAP_PERIODS * T`` start a new set; sets of fewer
   than ``MIN_SET_REPS`` cycles are incidental movement and dropped.

Physical bounds (periods, noise floors, grid) are not fitted; the ratios were chosen on
CaRa participants P1-P3 only (``python -m inference.lab evaluate-counter``; figures in
``docs/accuracy.md``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import signal

from inference.io import Recording
from inference.peak_sets import bandpass, group_sets, runs, shift_sets, split_groups, stronger_polarity
from inference.preprocessing import resample
from inference.results import CountedSet, CountingError

#: Standard gravity (m/s^2), to turn CoreMotion g into m/s^2.
G = 9.81

#: Channels of each sensor; any one channel of any sensor is enough to count.
SENSOR_CHANNELS: dict[str, tuple[str, ...]] = {
    "acc": ("acc_x", "acc_y", "acc_z"),  # m/s^2, gravity included
    "user_acc": ("user_acc_x", "user_acc_y", "user_acc_z"),  # g, gravity removed
    "gyro": ("gyro_x", "gyro_y", "gyro_z"),  # rad/s
}
GRAVITY_CHANNELS = ("gravity_x", "gravity_y", "gravity_z")

#: Exercises counted on the gyroscope when it is present.
GYRO_FIRST = frozenset({"jump_rope"})

# --- Physical bounds (not fitted) ------------------------------------------------
#: Grid rate (Hz): 6x the fastest cycle counted, so its 2nd harmonic is kept.
GRID_HZ = 25.0
#: Shortest / longest cycle (s): 4 Hz is above the fastest rope turning (~3 Hz); 6 s is a
#: slow gym repetition (muvr's pulldowns, CaRa's pull-ups).
MIN_PERIOD_S = 0.25
MAX_PERIOD_S = 6.0
#: Broad band (Hz) for the periodicity and the activity: the slowest cycle's frequency to
#: twice the fastest one's.
BROAD_BAND_HZ = (1.0 / MAX_PERIOD_S, 3.0)
#: Broad-band RMS under which a still wrist is (sensor noise plus tremor).
NOISE_FLOOR = {"gyro": 0.15, "acc": 0.3}
#: Window and hop (s) of the local periodicity: a window holds two of the slowest cycles.
WINDOW_S = 2.0 * MAX_PERIOD_S
HOP_S = 1.0
AC_MODE = "axes"
UNBIASED = False

# --- Ratios (chosen on CaRa P1-P3) -------------------------------------------------
MIN_PERIODICITY = 0.3
MIN_REL_RMS = 0.1
PEAK_SHARE = 0.85
BAND_RATIO = 1.6
MIN_DISTANCE = 0.6
MIN_PROMINENCE = 0.3
SET_GAP_PERIODS = 2.5
MIN_SET_REPS = 3
MIN_CYCLE_SIMILARITY = 0.3
CYCLE_SIZE_RATIO = 2.0
#: A set's edge cycle is dropped when it correlates under this with the set's other cycles
#: (-1: off). Measured for rest between sets, not shipped (docs/accuracy.md).
EDGE_SIMILARITY = -1.0


def can_count(channels: Iterable[str]) -> bool:
    """True when ``channels`` hold at least one accelerometer or gyroscope axis."""
    present = set(channels)
    return any(present & set(names) for names in SENSOR_CHANNELS.values())


def _sensors(rec: Recording) -> dict[str, np.ndarray]:
    """Available sensors as float64 (n, k), k = 1-3 axes: ``gyro`` (rad/s), ``acc`` (m/s^2)."""
    out: dict[str, np.ndarray] = {}
    gyro = [c for c in SENSOR_CHANNELS["gyro"] if c in rec.channels]
    if gyro:
        out["gyro"] = rec.select(gyro).astype(np.float64)
    acc = [c for c in SENSOR_CHANNELS["acc"] if c in rec.channels]
    user = [c for c in SENSOR_CHANNELS["user_acc"] if c in rec.channels]
    if acc:
        out["acc"] = rec.select(acc).astype(np.float64)
    elif user:
        x = rec.select(user).astype(np.float64)
        gravity = [GRAVITY_CHANNELS[SENSOR_CHANNELS["user_acc"].index(c)] for c in user]
        if rec.has_channels(gravity):
            x = x + rec.select(gravity).astype(np.float64)
        out["acc"] = x * G
    return out


def _autocorrelation(x: np.ndarray, max_lag: int, fs: float) -> np.ndarray:
    """Autocorrelation of (..., m, k) ``x``, normalised at lag 0: (..., max_lag + 1).

    ``AC_MODE`` "sum": summed over the axes; "axes": each axis normalised, the axis with the
    highest peak between the period bounds kept. ``UNBIASED``: divided by the overlap m - lag.
    """
    m = x.shape[-2]
    nfft = 1 << int(np.ceil(np.log2(m + max_lag + 1)))  # no circular wrap up to max_lag
    spec = np.fft.rfft(x - x.mean(axis=-2, keepdims=True), n=nfft, axis=-2)
    power = np.abs(spec) ** 2
    if AC_MODE == "sum":
        power = np.sum(power, axis=-1, keepdims=True)
    ac = np.fft.irfft(power, n=nfft, axis=-2)[..., : max_lag + 1, :]
    if UNBIASED:
        ac = ac * (m / (m - np.arange(max_lag + 1)))[:, None]
    zero = ac[..., :1, :]
    ac = np.divide(ac, zero, out=np.zeros_like(ac), where=zero > 0)
    if ac.shape[-1] == 1:
        return ac[..., 0]
    lo = min(int(np.ceil(MIN_PERIOD_S * fs)), max_lag)
    best = np.argmax(ac[..., lo:, :].max(axis=-2), axis=-1)
    return np.take_along_axis(ac, best[..., None, None], axis=-1)[..., 0]


def _period(ac: np.ndarray, fs: float, bounds: tuple[float, float] | None = None) -> tuple[float | None, float]:
    """Period (s) and periodicity from a normalised autocorrelation (lags in samples at ``fs``).

    The period is the shortest local maximum within ``PEAK_SHARE`` of the highest one
    between ``MIN_PERIOD_S`` and the last lag (or within ``bounds``, s); parabolic refinement.
    """
    lo = int(np.ceil((MIN_PERIOD_S if bounds is None else max(MIN_PERIOD_S, bounds[0])) * fs))
    cand, _ = signal.find_peaks(ac)
    cand = cand[cand >= lo]
    if bounds is not None:
        cand = cand[cand <= bounds[1] * fs]
    if cand.size == 0:
        return None, 0.0
    top = float(ac[cand].max())
    if top <= 0:
        return None, 0.0
    best = int(cand[np.flatnonzero(ac[cand] >= PEAK_SHARE * top)[0]])
    a, b, c = ac[best - 1], ac[best], ac[best + 1]
    den = a - 2 * b + c
    offset = 0.5 * (a - c) / den if den != 0 else 0.0
    return (best + offset) / fs, top


def _local_activity(broad: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Per window: periodicity and RMS of the broad-band signal; also the window length and starts (samples)."""
    m = broad.shape[0]
    width = min(m, round(WINDOW_S * fs))
    hop = max(1, round(HOP_S * fs))
    starts = np.arange(0, max(1, m - width + 1), hop)
    if starts[-1] + width < m:
        starts = np.append(starts, m - width)
    frames = np.stack([broad[s : s + width] for s in starts])
    max_lag = min(round(MAX_PERIOD_S * fs), width // 2)
    acs = _autocorrelation(frames, max_lag, fs)
    lo = int(np.ceil(MIN_PERIOD_S * fs))
    periodicity = np.zeros(len(starts))
    for i, ac in enumerate(acs):
        peaks, _ = signal.find_peaks(ac)
        peaks = peaks[peaks >= lo]
        if peaks.size:
            periodicity[i] = ac[peaks].max()
    rms = np.sqrt(np.mean(np.sum(frames**2, axis=2), axis=1))
    return periodicity, rms, width, starts


def _cycle_peaks(proj: np.ndarray, distance: int) -> np.ndarray:
    """Peaks of zero-mean ``proj`` that mark one full cycle each."""
    peaks, _ = signal.find_peaks(proj, distance=distance)
    if peaks.size == 0:
        return peaks
    typical = float(np.quantile(proj[peaks], 0.75))
    keep = proj[peaks] >= MIN_PROMINENCE * typical
    return peaks[keep]


def _cycles(x: np.ndarray, peaks: np.ndarray, period: int) -> np.ndarray:
    """(len(peaks), 2 * (period // 2) * k): one period of all axes of ``x`` centred on each peak, mean removed.

    Zero-padded where the period runs past either end of ``x``.
    """
    half = max(1, period // 2)
    m = x.shape[0]
    cycles = []
    for p in peaks:
        a, b = p - half, p + half
        if a < 0 or b > m:
            seg = np.zeros((2 * half, x.shape[1]))
            lo, hi = max(a, 0), min(b, m)
            seg[lo - a : lo - a + hi - lo] = x[lo:hi]
        else:
            seg = x[a:b]
        cycles.append(seg - seg.mean(axis=0))
    return np.stack(cycles).reshape(len(peaks), -1)


def _similar_cycles(x: np.ndarray, peaks: np.ndarray, period: int) -> np.ndarray:
    """Peaks whose cycle (one period of all axes of ``x`` centred on it) resembles a neighbour's.

    A repetition looks like the one before or after it (Pearson correlation at least
    ``MIN_CYCLE_SIMILARITY``, size within ``CYCLE_SIZE_RATIO``); a gesture between sets does not.
    """
    flat = _cycles(x, peaks, period)
    norms = np.linalg.norm(flat, axis=1)
    keep = np.zeros(len(peaks), dtype=bool)
    for i in range(len(peaks)):
        for j in (i - 1, i + 1):
            if 0 <= j < len(peaks) and norms[i] > 0 and norms[j] > 0:
                r = float(flat[i] @ flat[j] / (norms[i] * norms[j]))
                ratio = norms[i] / norms[j]
                if r >= MIN_CYCLE_SIMILARITY and 1 / CYCLE_SIZE_RATIO <= ratio <= CYCLE_SIZE_RATIO:
                    keep[i] = True
    return peaks[keep]


def _trim_edges(x: np.ndarray, peaks: np.ndarray, period: float, fs: float) -> np.ndarray:
    """``peaks`` without the edge cycles of each set that do not match the set's own repetitions.

    Sets are split as :func:`inference.peak_sets.group_sets` splits them
    (:func:`~inference.peak_sets.split_groups`). While a set's first
    (last) cycle correlates under ``EDGE_SIMILARITY`` with the mean of its other cycles, it is
    dropped: getting into position and standing up after the last repetition move the wrist at
    the set's tempo but not in its shape. Sets of ``MIN_SET_REPS`` or fewer are left as they are.
    """
    n = round(period * fs)
    kept = []
    for group in split_groups(peaks, SET_GAP_PERIODS * period * fs):
        cycles = _cycles(x, group, n)
        lo, hi = 0, group.size
        for side in (0, 1):
            while hi - lo > MIN_SET_REPS:
                i = lo if side == 0 else hi - 1
                rest = [j for j in range(lo, hi) if j != i]
                template = cycles[rest].mean(axis=0)
                den = np.linalg.norm(cycles[i]) * np.linalg.norm(template)
                if den > 0 and float(cycles[i] @ template) / den >= EDGE_SIMILARITY:
                    break
                if side == 0:
                    lo += 1
                else:
                    hi -= 1
        kept.append(group[lo:hi])
    return np.concatenate(kept) if kept else peaks


def _segment_sets(
    x: np.ndarray, start: int, stop: int, fs: float, *, exercise: str, trace, period_bounds=None
) -> list[CountedSet]:
    """Sets in the active segment ``x[start:stop]`` (``x``: (m, k) on the grid at ``fs``)."""
    seg = x[start:stop]
    broad = bandpass(seg, *BROAD_BAND_HZ, fs)
    max_lag = min(round(MAX_PERIOD_S * fs), seg.shape[0] // 2)
    period, periodicity = _period(_autocorrelation(broad, max_lag, fs), fs, period_bounds)
    info = {"t0": start / fs, "t1": stop / fs, "period_s": period, "periodicity": periodicity}
    if trace is not None:
        trace.setdefault("segments", []).append(info)
    if period is None:
        return []
    f0 = 1.0 / period
    narrow = bandpass(seg, f0 / BAND_RATIO, f0 * BAND_RATIO, fs)
    narrow = narrow - narrow.mean(axis=0)
    if narrow.shape[1] > 1:
        _, _, vt = np.linalg.svd(narrow, full_matrices=False)
        proj = narrow @ vt[0]
    else:
        proj = narrow[:, 0]
    distance = max(1, int(MIN_DISTANCE * period * fs))
    peaks, proj = stronger_polarity(proj, lambda p: _cycle_peaks(p, distance))
    if MIN_CYCLE_SIMILARITY > -1 and peaks.size > 1:
        peaks = _similar_cycles(broad, peaks, round(period * fs))
    if EDGE_SIMILARITY > -1 and peaks.size > 1:
        peaks = _trim_edges(broad, peaks, period, fs)
    info["peaks_s"] = (start + peaks) / fs
    return group_sets(
        peaks,
        proj,
        start=start,
        fs=fs,
        period=period,
        gap_periods=SET_GAP_PERIODS,
        min_reps=MIN_SET_REPS,
        exercise=exercise,
    )


def count_generic(
    recording: Recording,
    *,
    exercise: str = "unknown",
    trace: dict | None = None,
    period_bounds: tuple[float, float] | None = None,
) -> tuple[CountedSet, ...]:
    """Count the cycles of repetitive movement in a recording.

    Args:
        recording: any :class:`Recording` with at least one of ``acc_x/y/z`` (m/s^2, gravity
            included), ``user_acc_x/y/z`` (g; the matching ``gravity_*`` added when present)
            or ``gyro_x/y/z`` (rad/s); time (n,) in seconds, regular or bursty, 10-200 Hz.
        exercise: the exercise name written into the sets; ``jump_rope`` counts rope turns on
            the gyroscope when there is one.
        trace: optional dict filled with diagnostics (grid rate, sensor, window periodicity,
            per-segment period and peak times).
        period_bounds: (shortest, longest) repetition period (s) a set's period is looked for
            in (an exemplar's tempo, as ``inference.lab.learned_folds`` measures it); None: the
            physical bounds.

    Returns:
        One ``CountedSet(exercise, method="peaks")`` per burst of cycles, in time order, each
        with one :class:`Repetition` (seconds from the first sample) per cycle; an empty tuple
        when nothing repetitive happens.

    Raises:
        CountingError: the recording has no accelerometer or gyroscope channel.

    Method: local autocorrelation periodicity for activity, period from the autocorrelation
    of all axes, band-pass and peaks of the first principal component; see the module
    docstring for sources and parameters.
    """
    sensors = _sensors(recording)
    if not sensors:
        raise CountingError(
            "the recording has no accelerometer (acc_*, user_acc_*) or gyroscope (gyro_*) channel; it has "
            + ", ".join(recording.channels)
        )
    time_s = recording.time_s
    duration = float(time_s[-1] - time_s[0]) if time_s.size > 1 else 0.0
    if duration <= 0:
        return ()
    fs = min(GRID_HZ, (time_s.size - 1) / duration)
    grids = {name: resample(time_s, raw, fs)[1].astype(np.float64) for name, raw in sensors.items()}
    m = next(iter(grids.values())).shape[0]
    if m < max(16, int(MIN_SET_REPS * MIN_PERIOD_S * fs) + 2):
        return ()
    broads = {name: bandpass(x, *BROAD_BAND_HZ, fs) for name, x in grids.items()}
    if exercise in GYRO_FIRST and "gyro" in grids:
        name = "gyro"
    elif len(grids) == 1:
        name = next(iter(grids))
    else:
        max_lag = min(round(MAX_PERIOD_S * fs), m // 2)
        scores = {k: _period(_autocorrelation(b, max_lag, fs), fs)[1] for k, b in broads.items()}
        name = max(scores, key=lambda k: scores[k])
    x, broad = grids[name], broads[name]
    periodicity, rms, width, starts = _local_activity(broad, fs)
    floor = NOISE_FLOOR["gyro" if name == "gyro" else "acc"]
    ref = float(np.quantile(rms, 0.9))
    active = (periodicity >= MIN_PERIODICITY) & (rms >= max(floor, MIN_REL_RMS * ref))
    mask = np.zeros(m, dtype=bool)
    for s in starts[active]:
        mask[s : s + width] = True
    if trace is not None:
        trace.update(rate_hz=fs, sensor=name, periodicity=periodicity, rms=rms, window_starts_s=starts / fs)
    sets: list[CountedSet] = []
    for start, stop in runs(mask):
        sets.extend(_segment_sets(x, start, stop, fs, exercise=exercise, trace=trace, period_bounds=period_bounds))
    return tuple(shift_sets(sets, float(time_s[0])))
