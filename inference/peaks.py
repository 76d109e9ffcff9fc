"""Repetition counting by peak detection, for exercises the classifier does not know.

The counter finds the cycles of a repetitive movement in one inertial sensor
(accelerometer or gyroscope) and returns one :class:`CountedSet` per burst of
cycles, with one :class:`Repetition` per cycle. It is class-agnostic: nothing in it
is fitted to an exercise, except the choice of sensor for jump rope.

Method (classic autocorrelation + band-pass + peak picking, e.g. Morris et al.,
"RecoFit", CHI 2014; Mortazavi et al., "Determining the single best axis for
exercise repetition recognition and counting on smartwatches", BSN 2014; CaRa,
Nguyen et al., TPAMI 2025, for the data it was checked on):

1. **Uniform grid.** The samples are linearly interpolated onto a uniform grid at
   the recording's mean rate (``(n - 1) / duration``, at most ``MAX_RATE_HZ``), so
   bursty timestamps (CaRa: 5 ms median gap, gaps up to ~95 ms) and 10-200 Hz
   recordings are handled alike.
2. **Sensor.** ``jump_rope`` uses the gyroscope when present: the wrist rotation
   follows the rope, once per turn, while the acceleration magnitude shows every
   impact and over-counts people who hop twice per turn. Any other exercise uses
   the sensor whose broad-band signal is the most periodic (highest normalised
   autocorrelation at its dominant period), as periodicity, not energy, is what a
   repetition counter needs and it does not depend on the units.
3. **Activity.** Moving RMS (``ENVELOPE_S`` window) of the broad-band (0.25-8 Hz)
   vector; the threshold separating rest from movement is Otsu's threshold on
   the log envelope (the valley between the two modes), never below the sensor
   noise floor ``NOISE_FLOOR`` and never above ``MAX_ACTIVE_SHARE`` of the 90th
   percentile (so a recording that moves all the time is not cut in two).
4. **Per active segment:** the dominant period ``T`` is the highest peak of the
   summed per-axis autocorrelation between ``MIN_PERIOD_S`` and ``MAX_PERIOD_S``;
   a segment whose autocorrelation at ``T`` is under ``MIN_PERIODICITY`` is not
   repetitive (adjusting the watch, walking with irregular steps) and is skipped.
   The segment is band-passed to ``[f0 / BAND_RATIO, f0 * BAND_RATIO]`` around
   ``f0 = 1 / T`` (keeps the tempo changes of one set, drops the harmonics of
   impacts), projected onto its first principal component (the axis with most of
   the periodic energy, whatever the watch orientation), and its peaks are found
   with ``find_peaks(distance=MIN_DISTANCE * T, prominence=...)``. Prominence must
   reach ``MIN_PROMINENCE`` times the robust amplitude (1.4826 * MAD) of the
   projection, and each peak must reach ``REL_HEIGHT`` of the typical peak height
   (75th percentile in the segment): the half-swings that start and stop a set
   and unrelated movement inside the segment are smaller than a full cycle.
5. **Sets.** Consecutive cycles further apart than ``SET_GAP_PERIODS * T`` start
   a new set; sets with fewer than ``MIN_SET_REPS`` cycles are dropped as
   incidental movement. Each cycle runs from the trough before its peak to the
   trough after it.

All parameters are either physical bounds (cycle periods 0.25-4 s, sensor noise)
or ratios to quantities measured on the signal itself (dominant period, robust
amplitude, typical cycle prominence); none is set per file. The ratios were chosen
on CaRa participants P1-P3 and checked on P4-P6 (``inference.lab.evaluate_peaks``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import signal

from inference.io import Recording
from inference.peak_sets import bandpass, group_sets, runs, shift_sets, stronger_polarity
from inference.preprocessing import resample
from inference.results import CountedSet, CountingError

#: Standard gravity (m/s^2), to turn CoreMotion g into m/s^2.
G = 9.81

ACC_CHANNELS = ("acc_x", "acc_y", "acc_z")
GYRO_CHANNELS = ("gyro_x", "gyro_y", "gyro_z")
GRAVITY_CHANNELS = ("gravity_x", "gravity_y", "gravity_z")
USER_ACC_CHANNELS = ("user_acc_x", "user_acc_y", "user_acc_z")

#: Channel sets any one of which is enough for :func:`count_peaks`.
PEAK_CHANNEL_SETS: tuple[tuple[str, ...], ...] = (
    ACC_CHANNELS,  # m/s^2, gravity included (CaRa, canonical)
    GYRO_CHANNELS,  # rad/s
    USER_ACC_CHANNELS,  # g, gravity removed (Exermote); gravity_* added when present
)

#: Exercises counted on the gyroscope when it is present (see module docstring).
GYRO_FIRST = frozenset({"jump_rope"})

# --- Physical bounds (not fitted) ------------------------------------------------
#: Processing rate cap (Hz); human movement cycles are far below its Nyquist.
MAX_RATE_HZ = 200.0
#: Shortest / longest cycle counted (s): 4 Hz is above the fastest rope turning
#: (~3 Hz), 4 s is a slow squat or sit-up.
MIN_PERIOD_S = 0.25
MAX_PERIOD_S = 4.0
#: Upper edge (Hz) of the broad band used for activity and period: 2x the fastest
#: cycle, so a cycle's first harmonic is kept.
BROAD_HIGH_HZ = 2.0 / MIN_PERIOD_S
#: RMS of the broad-band vector under which nothing moves (sensor noise plus
#: tremor of a still wrist): rad/s for the gyroscope, m/s^2 for the accelerometer.
NOISE_FLOOR = {"gyro": 0.15, "acc": 0.3}
#: Moving-RMS window (s) of the activity envelope: about two cycles at 2 Hz.
ENVELOPE_S = 1.5

# --- Ratios to quantities measured on the signal (chosen on CaRa P1-P3) ----------
#: The activity threshold is at most this share of the envelope's 90th percentile.
MAX_ACTIVE_SHARE = 0.3
#: Normalised autocorrelation at the dominant period below which a segment is not
#: repetitive.
MIN_PERIODICITY = 0.3
#: Narrow band around the dominant frequency f0: [f0 / r, f0 * r]. 1.5 keeps a
#: +-30 % tempo drift and removes the 2nd harmonic (double hops, two impacts).
BAND_RATIO = 1.5
#: Minimum distance between peaks, as a share of the dominant period.
MIN_DISTANCE = 0.6
#: Minimum prominence, in robust amplitudes (1.4826 * MAD) of the projection.
MIN_PROMINENCE = 0.5
#: Minimum height of a counted cycle's peak (the projection is zero-mean) relative
#: to the 75th percentile of the peak heights in its segment: the half-swings that
#: start and stop a set, and unrelated movement, fall under half a full cycle.
REL_HEIGHT = 0.5
#: A gap of more than this many periods between cycles starts a new set.
SET_GAP_PERIODS = 2.0
#: Fewer consecutive cycles than this are incidental movement, not a set.
MIN_SET_REPS = 4


def can_count_peaks(channels: Iterable[str]) -> bool:
    """True when ``channels`` hold one of ``PEAK_CHANNEL_SETS`` (acc, gyro or user_acc x/y/z)."""
    present = set(channels)
    return any(present.issuperset(s) for s in PEAK_CHANNEL_SETS)


def _sensors(rec: Recording) -> dict[str, np.ndarray]:
    """Available 3-axis sensors as float64 (n, 3): ``gyro`` (rad/s), ``acc`` (m/s^2)."""
    out: dict[str, np.ndarray] = {}
    if rec.has_channels(GYRO_CHANNELS):
        out["gyro"] = rec.select(GYRO_CHANNELS).astype(np.float64)
    if rec.has_channels(ACC_CHANNELS):
        out["acc"] = rec.select(ACC_CHANNELS).astype(np.float64)
    elif rec.has_channels(USER_ACC_CHANNELS):
        acc = rec.select(USER_ACC_CHANNELS).astype(np.float64)
        if rec.has_channels(GRAVITY_CHANNELS):
            acc = acc + rec.select(GRAVITY_CHANNELS).astype(np.float64)
        out["acc"] = acc * G
    return out


def _resample(time_s: np.ndarray, x: np.ndarray, fs: float) -> np.ndarray:
    """(n, c) samples at ``time_s`` -> (m, c) float64 on a uniform grid at ``fs`` (linear)."""
    return resample(time_s, x, fs)[1].astype(np.float64)


def _moving_rms(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving RMS of the vector norm of (m, c) ``x``, shape (m,)."""
    power = np.sum(x * x, axis=1)
    csum = np.concatenate([[0.0], np.cumsum(power)])
    half = width // 2
    idx = np.arange(power.size)
    lo = np.clip(idx - half, 0, power.size)
    hi = np.clip(idx + half + 1, 0, power.size)
    return np.sqrt(np.maximum((csum[hi] - csum[lo]) / (hi - lo), 0.0))


def _otsu_log(env: np.ndarray, floor: float) -> float:
    """Otsu's threshold (Otsu 1979) of ``log(env)``: the best split into rest and movement."""
    v = np.log(np.maximum(env, 0.1 * floor))
    hist, edges = np.histogram(v, bins=128)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (m0 / w0 - (m0[-1] - m0) / w1) ** 2
    return float(np.exp(edges[int(np.argmax(np.nan_to_num(between))) + 1]))


def _dominant_period(x: np.ndarray, fs: float) -> tuple[float | None, float]:
    """Dominant period (s) of (m, c) ``x`` and its normalised autocorrelation.

    The autocorrelation (FFT, biased) is summed over the axes, normalised by lag 0,
    and its highest local maximum between ``MIN_PERIOD_S`` and
    ``min(MAX_PERIOD_S, duration / 2)`` is taken (parabolic refinement).
    Returns ``(None, 0.0)`` when there is none.
    """
    m = x.shape[0]
    lo = int(np.ceil(MIN_PERIOD_S * fs))
    hi = min(int(MAX_PERIOD_S * fs), m // 2)
    if hi <= lo + 2:
        return None, 0.0
    nfft = 1 << int(np.ceil(np.log2(2 * m)))
    spec = np.fft.rfft(x - x.mean(axis=0), n=nfft, axis=0)
    ac = np.fft.irfft(np.sum(np.abs(spec) ** 2, axis=1), n=nfft)[: hi + 2]
    if ac[0] <= 0:
        return None, 0.0
    ac = ac / ac[0]
    cand, _ = signal.find_peaks(ac[: hi + 1])
    cand = cand[cand >= lo]
    if cand.size == 0:
        return None, 0.0
    best = int(cand[np.argmax(ac[cand])])
    a, b, c = ac[best - 1], ac[best], ac[best + 1]
    den = a - 2 * b + c
    offset = 0.5 * (a - c) / den if den != 0 else 0.0
    return (best + offset) / fs, float(b)


def _choose_sensor(sensors: dict[str, np.ndarray], exercise: str, time_s: np.ndarray, fs: float) -> str:
    """Name of the sensor to count on (see module docstring, step 2)."""
    if exercise in GYRO_FIRST and "gyro" in sensors:
        return "gyro"
    if len(sensors) == 1:
        return next(iter(sensors))
    scores = {}
    for name, raw in sensors.items():
        x = bandpass(_resample(time_s, raw, fs), 1.0 / MAX_PERIOD_S, BROAD_HIGH_HZ, fs)
        scores[name] = _dominant_period(x, fs)[1]
    return max(scores, key=lambda k: scores[k])


def _cycle_peaks(proj: np.ndarray, distance: int) -> np.ndarray:
    """Indices of the peaks of zero-mean ``proj`` that mark one full cycle each (step 4)."""
    amp = 1.4826 * float(np.median(np.abs(proj - np.median(proj))))
    peaks, _ = signal.find_peaks(proj, distance=distance, prominence=max(MIN_PROMINENCE * amp, 1e-12))
    if peaks.size:
        heights = proj[peaks]
        peaks = peaks[heights >= REL_HEIGHT * np.quantile(heights, 0.75)]
    return peaks


def _segment_sets(
    x: np.ndarray, start: int, stop: int, fs: float, *, exercise: str, trace: dict | None
) -> list[CountedSet]:
    """Sets found in the active segment ``x[start:stop]`` (``x``: (m, 3), uniform at ``fs``)."""
    broad = bandpass(x[start:stop], 1.0 / MAX_PERIOD_S, BROAD_HIGH_HZ, fs)
    period, periodicity = _dominant_period(broad, fs)
    info = {"t0": start / fs, "t1": stop / fs, "period_s": period, "periodicity": periodicity}
    if trace is not None:
        trace.setdefault("segments", []).append(info)
    if period is None or periodicity < MIN_PERIODICITY:
        return []
    f0 = 1.0 / period
    narrow = bandpass(x[start:stop], f0 / BAND_RATIO, f0 * BAND_RATIO, fs)
    narrow = narrow - narrow.mean(axis=0)
    _, _, vt = np.linalg.svd(narrow, full_matrices=False)
    proj = narrow @ vt[0]
    distance = max(1, int(MIN_DISTANCE * period * fs))
    peaks, proj = stronger_polarity(proj, lambda p: _cycle_peaks(p, distance))
    info["peaks_s"] = (start + peaks) / fs
    if trace is not None:
        info["projection"] = proj
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


def count_peaks(
    recording: Recording, *, exercise: str = "unknown", trace: dict | None = None
) -> tuple[CountedSet, ...]:
    """Count the cycles of repetitive movement in a recording by peak detection.

    Args:
        recording: any :class:`Recording` with ``acc_x/y/z`` (m/s^2, gravity
            included), ``user_acc_x/y/z`` (g; ``gravity_x/y/z`` added when present,
            then times 9.81) and/or ``gyro_x/y/z`` (rad/s); time (n,) in seconds,
            regular or bursty, at 10-200 Hz.
        exercise: the exercise name written into the sets; ``jump_rope`` counts
            rope turns on the gyroscope (see the module docstring).
        trace: optional dict filled with diagnostics (rate, sensor, threshold,
            per-segment period, periodicity and peak times) for evaluation.

    Returns:
        One ``CountedSet(exercise, method="peaks")`` per burst of cycles, in time
        order, each with one :class:`Repetition` (seconds from the first sample)
        per cycle; an empty tuple when nothing repetitive happens.

    Raises:
        CountingError: the recording has no accelerometer or gyroscope channels.

    Method: autocorrelation period, band-pass and ``scipy.signal.find_peaks`` on
    the first principal component; see the module docstring for the sources and
    the reason of each parameter.
    """
    sensors = _sensors(recording)
    if not sensors:
        raise CountingError(
            "peak counting needs accelerometer (acc_x/y/z or user_acc_x/y/z) or gyroscope "
            f"(gyro_x/y/z) channels; this recording has {', '.join(recording.channels) or 'none'}"
        )
    time_s = recording.time_s
    duration = float(time_s[-1] - time_s[0]) if time_s.size > 1 else 0.0
    if duration <= 0:
        return ()
    fs = min(MAX_RATE_HZ, (time_s.size - 1) / duration)
    name = _choose_sensor(sensors, exercise, time_s, fs)
    x = _resample(time_s, sensors[name], fs)
    if x.shape[0] < int(MIN_SET_REPS * MIN_PERIOD_S * fs) + 2 or x.shape[0] < 16:
        return ()
    broad = bandpass(x, 1.0 / MAX_PERIOD_S, BROAD_HIGH_HZ, fs)
    env = _moving_rms(broad, max(3, round(ENVELOPE_S * fs)))
    floor = NOISE_FLOOR[name]
    threshold = max(floor, min(_otsu_log(env, floor), MAX_ACTIVE_SHARE * float(np.quantile(env, 0.9))))
    if trace is not None:
        trace.update(rate_hz=fs, sensor=name, threshold=threshold, envelope=env)
    sets: list[CountedSet] = []
    min_len = int(MIN_SET_REPS * MIN_PERIOD_S * fs)
    for start, stop in runs(env > threshold):
        if stop - start > min_len:
            sets.extend(_segment_sets(x, start, stop, fs, exercise=exercise, trace=trace))
    return tuple(shift_sets(sets, float(time_s[0])))
