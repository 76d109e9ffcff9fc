"""Shared steps of the peak counters (:mod:`inference.peaks`, :mod:`inference.generic`).

Both find cycle peaks on a band-passed projection of one sensor; what they share is how
those peaks become sets and repetitions, and the filtering around it.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np
from scipy import signal

from inference.results import CountedSet, Repetition


def bandpass(x: np.ndarray, lo: float, hi: float, fs: float) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth band-pass of (m, ...) ``x`` along axis 0 (Hz, at ``fs`` Hz).

    ``hi`` is capped at 0.45 ``fs``; when that leaves no band, a high-pass at ``lo``.
    """
    hi = min(hi, 0.45 * fs)
    if lo >= hi:
        sos = signal.butter(2, lo, btype="highpass", fs=fs, output="sos")
    else:
        sos = signal.butter(2, [lo, hi], btype="bandpass", fs=fs, output="sos")
    padlen = min(3 * (2 * len(sos) + 1) * 4, x.shape[0] - 1)
    return signal.sosfiltfilt(sos, x, axis=0, padlen=padlen)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the True runs of a boolean array."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def stronger_polarity(proj: np.ndarray, find: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(peaks, signed projection)``: ``find`` run on ``proj`` and ``-proj``, the side with the larger mean peak kept.

    The sign of a principal axis is arbitrary, and a burst of N cycles shows N extremes of one
    sign and N + 1 of the other: cycles are counted on the sharp side (e.g. the wrist flick).
    """
    candidates = [(find(p), p) for p in (proj, -proj)]
    return max(candidates, key=lambda c: float(c[1][c[0]].mean()) if c[0].size else -np.inf)


def split_groups(peaks: np.ndarray, gap_samples: float) -> list[np.ndarray]:
    """Sorted peak indices split where two neighbours are more than ``gap_samples`` apart."""
    return np.split(peaks, np.flatnonzero(np.diff(peaks) > gap_samples) + 1)


def group_sets(
    peaks: np.ndarray,
    proj: np.ndarray,
    *,
    start: int,
    fs: float,
    period: float,
    gap_periods: float,
    min_reps: int,
    exercise: str,
    method: str = "peaks",
) -> list[CountedSet]:
    """Cycle peaks of one segment -> sets of repetitions.

    Args:
        peaks: sorted sample indices (into ``proj``) of the counted cycles' peaks.
        proj: (m,) the projection the peaks were found on; its troughs bound the repetitions.
        start: index of ``proj[0]`` on the recording's grid (samples).
        fs: grid rate (Hz).
        period: the segment's cycle period (s).
        gap_periods: peaks further apart than this many periods start a new set.
        min_reps: groups with fewer peaks are dropped.
        exercise, method: written into each :class:`CountedSet`.

    Returns:
        One set per group, each repetition from the trough before its peak to the trough after
        it (half a period out at the set's edges), in seconds from the grid's first sample.
    """
    sets: list[CountedSet] = []
    half = round(period * fs / 2)
    for group in split_groups(peaks, gap_periods * period * fs):
        if group.size < min_reps:
            continue
        troughs = [max(0, group[0] - half)]
        troughs += [a + int(np.argmin(proj[a:b])) for a, b in pairwise(group)]
        troughs.append(min(proj.size - 1, group[-1] + half))
        reps = tuple(
            Repetition(float((start + troughs[i]) / fs), float((start + troughs[i + 1]) / fs))
            for i in range(group.size)
        )
        sets.append(CountedSet(exercise=exercise, method=method, repetitions=reps))
    return sets


def shift_sets(sets: list[CountedSet], shift: float) -> list[CountedSet]:
    """``sets`` with every repetition moved by ``shift`` seconds (the recording's first timestamp)."""
    if shift == 0:
        return sets
    return [
        CountedSet(s.exercise, s.method, tuple(Repetition(r.start_s + shift, r.end_s + shift) for r in s.repetitions))
        for s in sets
    ]
