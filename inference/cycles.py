"""Extending counted sets by repeated cycles of the movement (self-similarity).

The phase classifier can lose an athlete mid-set: the movement goes on, cycle after
cycle, while the classifier reads rest (Exermote LOSO: athlete 2's sit-up set of 8 was
counted 3-4, the arm's posture drifting from the training athletes'). A set's own
repetitions show what one cycle of this athlete's movement looks like, so the cycles
that follow (or precede) it are found by matching that template, as self-similarity
and autocorrelation counters do (RecoFit, Morris et al., CHI 2014).

Only the gravity vector is matched: it is smooth, it carries the posture of every
exercise here, and its size does not depend on how hard the athlete moves.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, filtfilt

from inference.results import CountedSet, Repetition

#: Low-pass cut-off (Hz) before matching, so a cycle a sample early or late still matches.
LOWPASS_HZ = 1.0
#: A cycle is searched within this share of the period around where it is expected.
JITTER = 0.25
#: A matched cycle's size (RMS about its mean) must lie within this factor of the template's,
#: since correlation alone ignores scale (a small fidget can have a squat's shape).
AMPLITUDE_RATIO = 2.0
#: Sets with fewer repetitions give no period to follow.
MIN_REPS = 2
GRAVITY_CHANNELS = ("gravity_x", "gravity_y", "gravity_z")


def gravity_columns(x: np.ndarray, channels: tuple[str, ...]) -> np.ndarray | None:
    """The (m, 3) gravity columns of samples ``x`` (m, c) named by ``channels``; None without them."""
    if not all(name in channels for name in GRAVITY_CHANNELS):
        return None
    return x[:, [channels.index(name) for name in GRAVITY_CHANNELS]]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two (n, c) arrays, each centred per channel; 0 when one is flat."""
    return float(_correlations(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)[None])[0])


def lag_correlations(x: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """``correlation(x[:-lag], x[lag:])`` for each lag in ``lags`` (each 1 <= lag < len(x)); (m, c) -> (len(lags),).

    Computed for all lags at once from running sums and each channel's autocorrelation.
    """
    x = np.asarray(x, dtype=np.float64)
    m = len(x)
    zero = np.zeros((1, x.shape[1]))
    s1 = np.concatenate([zero, np.cumsum(x, axis=0)])
    s2 = np.concatenate([zero, np.cumsum(x * x, axis=0)])
    cross = np.stack([np.correlate(x[:, c], x[:, c], "full")[m - 1 :] for c in range(x.shape[1])], axis=1)
    n = (m - lags)[:, None]
    sum_a, sum_b = s1[m - lags], s1[m] - s1[lags]
    var_a = (s2[m - lags] - sum_a**2 / n).sum(axis=1)
    var_b = (s2[m] - s2[lags] - sum_b**2 / n).sum(axis=1)
    cov = (cross[lags] - sum_a * sum_b / n).sum(axis=1)
    norm = np.sqrt(np.clip(var_a, 0, None) * np.clip(var_b, 0, None))
    return np.divide(cov, norm, out=np.zeros(len(lags)), where=norm > 1e-12)


def _correlations(template: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """:func:`correlation` of a (n, c) template with each of (k, n, c) windows; shape (k,)."""
    a = template - template.mean(axis=0)
    b = windows - windows.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum() * (b * b).sum(axis=(1, 2)))
    return np.divide((a * b).sum(axis=(1, 2)), norm, out=np.zeros(len(windows)), where=norm > 0)


def _size(x: np.ndarray) -> float:
    return float(np.linalg.norm(x - x.mean(axis=0)))


def lowpass(signal: np.ndarray, rate_hz: float, cutoff_hz: float = LOWPASS_HZ) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth low-pass along time; (m, c) -> (m, c) float64.

    Signals too short to filter (< 10 samples) or a cut-off at or above Nyquist come back unchanged.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if len(signal) < 10 or cutoff_hz >= rate_hz / 2:
        return signal
    b, a = butter(2, cutoff_hz / (rate_hz / 2))
    return filtfilt(b, a, signal, axis=0)


def extend_sets(
    sets: tuple[CountedSet, ...], gravity: np.ndarray, rate_hz: float, threshold: float
) -> tuple[CountedSet, ...]:
    """Add the repetitions that repeat a set's cycle before and after the counted ones.

    For each set of at least ``MIN_REPS`` repetitions: the period is the lag that best
    correlates the set's signal with itself (within 0.7-1.3 times the median spacing of
    its repetitions); the template is the mean of its cycles, each aligned to the first.
    Then, one period at a time forward from the last cycle and backward from the first,
    the best-matching cycle within ``JITTER`` of a period is taken as one more repetition
    while it correlates with the template at ``threshold`` or more, is of a similar size
    (``AMPLITUDE_RATIO``) and stays clear of the neighbouring sets.

    Args:
        sets: counted sets in time order (sample times at ``rate_hz``).
        gravity: float, shape (m, 3), the gravity vector on the same grid.
        rate_hz: grid rate (Hz).
        threshold: the least correlation (0-1) a cycle needs; 0 or less turns this off.

    Returns:
        Sets in time order, each with its added repetitions; added ones last the median
        duration of the set's counted repetitions.
    """
    if threshold <= 0 or not sets or len(gravity) == 0:
        return sets
    g = lowpass(gravity, rate_hz)
    out: list[CountedSet] = []
    for k, one in enumerate(sets):
        # Between the previous set as extended and the next as counted: two sets split by a
        # missed repetition must not both claim it.
        lo = round(out[-1].end_s * rate_hz) if out else 0
        hi = min(round(sets[k + 1].start_s * rate_hz) if k + 1 < len(sets) else len(g), len(g))
        added = _extend(one, g, rate_hz, threshold, (lo, hi))
        reps = tuple(sorted(one.repetitions + added, key=lambda r: r.start_s))
        out.append(CountedSet(exercise=one.exercise, method=one.method, repetitions=reps) if added else one)
    return tuple(out)


def _extend(
    counted: CountedSet, g: np.ndarray, rate_hz: float, threshold: float, free: tuple[int, int]
) -> tuple[Repetition, ...]:
    """Repetitions to add to one set; ``free`` is the stretch ``[lo, hi)`` between its neighbours."""
    lo, hi = free
    if counted.reps < MIN_REPS:
        return ()
    starts = np.array([round(r.start_s * rate_hz) for r in counted.repetitions])
    duration = float(np.median([r.end_s - r.start_s for r in counted.repetitions]))
    spacing = int(np.median(np.diff(starts)))
    segment = g[starts[0] : min(starts[-1] + spacing, len(g))]
    lags = [lag for lag in range(max(5, int(0.7 * spacing)), int(1.3 * spacing) + 1) if lag < len(segment) - 5]
    if not lags:
        return ()
    period = lags[int(np.argmax(lag_correlations(segment, np.array(lags))))]
    jitter = max(1, int(JITTER * period))
    # Every stretch of one period: (m - period + 1, period, c), a view, not a copy.
    windows = np.lib.stride_tricks.sliding_window_view(g, period, axis=0).transpose(0, 2, 1)

    def best(centre: int, template: np.ndarray, start: int, stop: int) -> tuple[float, int | None]:
        first, last = max(centre - jitter, start), min(centre + jitter, stop - period)
        if first > last:
            return -1.0, None
        scores = _correlations(template, windows[first : last + 1])
        i = int(np.argmax(scores))
        return float(scores[i]), first + i

    reference = g[starts[0] : starts[0] + period]
    aligned = [c for c in (best(s, reference, 0, len(g))[1] for s in starts) if c is not None]
    if not aligned:
        return ()
    template = np.mean([g[c : c + period] for c in aligned], axis=0)
    size = _size(template)
    added = []
    for step, first in ((period, aligned[-1]), (-period, aligned[0])):
        anchor = first
        while True:
            score, c = best(anchor + step, template, lo, hi)
            if c is None or score < threshold:
                break
            ratio = _size(g[c : c + period]) / size if size > 0 else 0.0
            if not 1 / AMPLITUDE_RATIO <= ratio <= AMPLITUDE_RATIO:
                break
            added.append(Repetition(c / rate_hz, c / rate_hz + duration))
            anchor = c
    return tuple(added)
