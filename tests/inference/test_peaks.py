"""Tests of the peak-detection counter (inference.peaks) on synthetic and CaRa signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.io import Recording
from inference.lab.evaluate_peaks import evaluate_cara
from inference.peaks import PEAK_CHANNEL_SETS, can_count_peaks, count_peaks
from inference.results import CountingError

CARA_ROOT = Path(__file__).resolve().parents[2].parent / "shared/data/cara"
CARA_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


def _plan(bursts: list[tuple[float, int]], freq: float) -> tuple[list[tuple[float, float]], float]:
    """Burst intervals (s) for ``(pause_before_s, cycles)`` pairs, and the total duration (+4 s rest)."""
    t, out = 0.0, []
    for pause, cycles in bursts:
        t += pause
        out.append((t, t + cycles / freq))
        t += cycles / freq
    return out, t + 4.0


def _synthetic(
    time_s: np.ndarray,
    intervals: list[tuple[float, float]],
    freq: float,
    *,
    rng: np.random.Generator,
    double_hop: bool = False,
    noise: float = 0.05,
) -> np.ndarray:
    """(n, 6) acc (m/s^2, gravity on z) + gyro (rad/s) of a wrist doing one cycle per 1/freq s.

    Each cycle is a full -cos period (one peak) on the gyroscope, rotating over the three axes.
    The acceleration shows one impact per cycle, or two (``double_hop``) as a person hopping
    twice per rope turn.
    """
    n = time_s.size
    gyro = np.zeros((n, 3))
    acc = np.zeros((n, 3))
    for t0, t1 in intervals:
        inside = (time_s >= t0) & (time_s < t1)
        phase = 2 * np.pi * freq * (time_s[inside] - t0)
        wave = -np.cos(phase)
        gyro[inside] = np.stack([5 * wave, 3 * np.sin(phase) * (1 - np.cos(phase)) / 2, 2 * wave], axis=1)
        hops = 2 if double_hop else 1
        local = ((time_s[inside] - t0) * freq * hops) % 1.0
        acc[inside, 2] = 15 * np.exp(-0.5 * ((local - 0.5) / 0.08) ** 2)
        if not double_hop:
            acc[inside, 0] = 4 * np.sin(phase)  # arm sway, once per cycle
    acc[:, 2] += 9.81
    samples = np.concatenate([acc, gyro], axis=1) + noise * rng.standard_normal((n, 6))
    return samples.astype(np.float32)


def _recording(time_s: np.ndarray, samples: np.ndarray, channels=CARA_CHANNELS) -> Recording:
    return Recording(time_s=time_s - time_s[0], samples=samples, channels=tuple(channels), source_format="csv")


def _check_sets(sets, intervals, freq, counts) -> None:
    """One set per burst, with the burst's count, and no repetition outside a burst."""
    assert [s.reps for s in sets] == counts
    assert all(s.method == "peaks" for s in sets)
    for s, (t0, t1) in zip(sets, intervals, strict=True):
        slack = 0.75 / freq
        assert t0 - slack <= s.start_s
        assert s.end_s <= t1 + slack
        starts = [r.start_s for r in s.repetitions]
        assert starts == sorted(starts)
        assert all(r.start_s < r.end_s for r in s.repetitions)


@pytest.mark.parametrize(("rate", "freq"), [(10.0, 1.0), (50.0, 2.0), (100.0, 2.5), (200.0, 1.5)])
def test_counts_bursts_at_several_rates_and_ignores_pauses(rate: float, freq: float) -> None:
    rng = np.random.default_rng(int(rate))
    intervals, duration = _plan([(3.0, 12), (8.0, 20), (6.0, 7)], freq)
    time_s = np.arange(0, duration, 1 / rate)
    rec = _recording(time_s, _synthetic(time_s, intervals, freq, rng=rng))
    sets = count_peaks(rec, exercise="jumping_jack")
    _check_sets(sets, intervals, freq, [12, 20, 7])
    assert all(s.exercise == "jumping_jack" for s in sets)


def test_noise_and_slow_drift_do_not_change_the_count() -> None:
    rng = np.random.default_rng(7)
    freq = 1.2
    intervals, duration = _plan([(4.0, 15), (10.0, 10)], freq)
    time_s = np.arange(0, duration, 0.01)
    samples = _synthetic(time_s, intervals, freq, rng=rng, noise=0.4)
    samples[:, :3] += np.sin(2 * np.pi * 0.05 * time_s)[:, None]  # posture drift, 20 s period
    _check_sets(count_peaks(_recording(time_s, samples)), intervals, freq, [15, 10])


def test_jump_rope_counts_turns_not_double_hops() -> None:
    rng = np.random.default_rng(3)
    freq = 2.0
    intervals, duration = _plan([(3.0, 24), (7.0, 16)], freq)
    time_s = np.arange(0, duration, 0.01)
    samples = _synthetic(time_s, intervals, freq, rng=rng, double_hop=True)
    rec = _recording(time_s, samples)
    _check_sets(count_peaks(rec, exercise="jump_rope"), intervals, freq, [24, 16])
    # The same movement without a gyroscope: the impacts give two peaks per turn.
    acc_only = _recording(time_s, samples[:, :3], CARA_CHANNELS[:3])
    impacts = sum(s.reps for s in count_peaks(acc_only, exercise="jump_rope"))
    assert impacts >= 1.5 * 40


def test_bursty_irregular_timestamps() -> None:
    rng = np.random.default_rng(11)
    freq = 2.2
    intervals, duration = _plan([(2.5, 18), (9.0, 14)], freq)
    # CaRa-like arrival: runs of 2-8 ms gaps broken by 40-95 ms gaps, ~100 Hz on average.
    gaps = np.where(rng.random(40000) < 0.08, rng.uniform(0.04, 0.095, 40000), rng.uniform(0.002, 0.008, 40000))
    time_s = np.cumsum(gaps)
    time_s = time_s[time_s < duration]
    rec = _recording(time_s, _synthetic(time_s, intervals, freq, rng=rng))
    _check_sets(count_peaks(rec, exercise="jump_rope"), intervals, freq, [18, 14])


def test_gravity_and_user_acc_in_g_without_gyroscope() -> None:
    rng = np.random.default_rng(5)
    freq = 0.8
    intervals, duration = _plan([(3.0, 10), (8.0, 9)], freq)
    time_s = np.arange(0, duration, 0.1)  # Exermote: 10 Hz
    acc = _synthetic(time_s, intervals, freq, rng=rng)[:, :3] / 9.81
    gravity = np.tile([0.0, 0.0, 1.0], (time_s.size, 1))
    samples = np.concatenate([gravity, acc - gravity], axis=1).astype(np.float32)
    channels = ("gravity_x", "gravity_y", "gravity_z", "user_acc_x", "user_acc_y", "user_acc_z")
    _check_sets(count_peaks(_recording(time_s, samples, channels)), intervals, freq, [10, 9])


def test_no_motion_gives_no_sets() -> None:
    rng = np.random.default_rng(2)
    time_s = np.arange(0, 60, 0.01)
    samples = _synthetic(time_s, [], 1.0, rng=rng, noise=0.02)
    assert count_peaks(_recording(time_s, samples), exercise="jump_rope") == ()
    assert count_peaks(_recording(time_s, samples)) == ()


def test_irregular_movement_between_bursts_is_not_counted() -> None:
    rng = np.random.default_rng(13)
    freq = 2.0
    intervals, duration = _plan([(3.0, 20), (12.0, 20)], freq)
    time_s = np.arange(0, duration, 0.01)
    samples = _synthetic(time_s, intervals, freq, rng=rng)
    # Adjusting the watch, picking up the rope: a few isolated jerks in the pause.
    for t in (intervals[0][1] + 3.0, intervals[0][1] + 5.5, intervals[0][1] + 6.1, intervals[0][1] + 9.0):
        near = np.abs(time_s - t) < 0.15
        samples[near, 3:] += rng.normal(0, 3.0, (near.sum(), 3))
    _check_sets(count_peaks(_recording(time_s, samples), exercise="jump_rope"), intervals, freq, [20, 20])


def test_channels_check_and_error() -> None:
    assert can_count_peaks(CARA_CHANNELS)
    assert can_count_peaks(("gyro_x", "gyro_y", "gyro_z"))
    assert can_count_peaks(("user_acc_x", "user_acc_y", "user_acc_z", "pitch"))
    assert not can_count_peaks(("pitch", "roll", "yaw", "acc_x"))
    assert all(can_count_peaks(s) for s in PEAK_CHANNEL_SETS)
    time_s = np.arange(0, 10, 0.01)
    rec = _recording(time_s, np.zeros((time_s.size, 3), np.float32), ("pitch", "roll", "yaw"))
    with pytest.raises(CountingError, match="accelerometer"):
        count_peaks(rec)


@pytest.fixture(scope="module")
def cara() -> dict:
    if not CARA_ROOT.is_dir():
        pytest.skip(f"CaRa recordings not found at {CARA_ROOT} (see ../shared/data/cara/README.md)")
    return evaluate_cara(CARA_ROOT, None)


# Measured (python -m inference.evaluate_peaks; MRE / session-1 +-1 / all +-1):
# jump rope tune P1-P3 4.3 % / 100 % / 83 %, check P4-P6 13.7 % / 67 % / 36 %
# (P4 session-1 is labelled 10 but shows ~19 rope turns; without it 6.1 % / 100 %);
# jumping jack tune 6.8 % / 100 % / 91 %, check 5.6 % / 100 % / 89 %.
# The bounds below add a small margin to those figures.
@pytest.mark.parametrize(
    ("exercise", "split", "max_error", "min_s1", "min_all"),
    [
        ("jump_rope", "tune", 0.06, 1.0, 0.75),
        ("jump_rope", "check", 0.15, 0.66, 0.3),
        ("jump_rope", "all", 0.10, 0.8, 0.55),
        ("jumping_jack", "tune", 0.08, 1.0, 0.8),
        ("jumping_jack", "check", 0.07, 1.0, 0.75),
        ("jumping_jack", "all", 0.075, 1.0, 0.8),
    ],
)
def test_cara_counts(cara: dict, exercise: str, split: str, max_error: float, min_s1: float, min_all: float) -> None:
    s = cara[exercise]["splits"][split]
    assert s["files"] > 0
    assert s["mean_rel_error"] <= max_error, s
    assert s["session1_within1"] >= min_s1, s
    assert s["all_within1"] >= min_all, s


def test_cara_jump_rope_unseen_participants_without_the_suspect_label(cara: dict) -> None:
    rows = [
        r
        for r in cara["jump_rope"]["rows"]
        if r["participant"] in ("P4", "P5", "P6") and not (r["participant"] == "P4" and r["session"] == "session-1")
    ]
    assert len(rows) == 10
    assert np.mean([r["rel_error"] for r in rows]) <= 0.08  # measured 6.1 %
    assert all(r["within1"] for r in rows if r["session"] == "session-1")
