from pathlib import Path

import numpy as np
import pytest

from inference.counting import CountingParams, count_phases, count_probabilities, runs
from inference.cycles import correlation, extend_sets, gravity_columns, lag_correlations
from inference.results import CountedSet, Repetition
from inference.scoring import true_sets

RATE = 10.0
PERIOD = 40  # samples: 30 of movement, 10 still
MOVE = 30
EXERMOTE = Path(__file__).resolve().parents[3] / "shared" / "data" / "exermote"


def tilt(angle_deg: np.ndarray, axis: str = "x") -> np.ndarray:
    """Gravity (n, 3) of a device tilted from +z towards ``axis`` by ``angle_deg``."""
    a = np.deg2rad(angle_deg)
    g = np.zeros((len(a), 3))
    g[:, 2] = np.cos(a)
    g[:, "xyz".index(axis)] = np.sin(a)
    return g


def cycles(n: int, *, amplitude: float = 90.0, axis: str = "x") -> np.ndarray:
    """n repetitions: the arm tilts to ``amplitude`` degrees and back, then holds still."""
    one = np.concatenate([amplitude * (1 - np.cos(2 * np.pi * np.arange(MOVE) / MOVE)) / 2, np.zeros(PERIOD - MOVE)])
    return tilt(np.tile(one, n), axis)


def rest(n: int, rng: np.random.Generator) -> np.ndarray:
    return tilt(rng.normal(0, 1.0, n))


def counted(starts: list[int], exercise: str = "squat") -> CountedSet:
    reps = tuple(Repetition(s / RATE, (s + MOVE) / RATE) for s in starts)
    return CountedSet(exercise=exercise, method="classifier", repetitions=reps)


def starts_of(s: CountedSet) -> list[int]:
    return [round(r.start_s * RATE) for r in s.repetitions]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_correlation_is_one_for_a_scaled_copy_and_zero_for_a_flat_signal():
    x = np.random.default_rng(1).normal(size=(40, 3))
    assert correlation(x, 3 * x + 1) == pytest.approx(1.0)
    assert correlation(x, np.ones((40, 3))) == 0.0


def test_lag_correlations_match_the_direct_correlation_at_every_lag():
    x = np.cumsum(np.random.default_rng(2).normal(size=(120, 3)), axis=0)
    lags = np.arange(1, 115)
    direct = [correlation(x[:-lag], x[lag:]) for lag in lags]
    assert lag_correlations(x, lags) == pytest.approx(direct, abs=1e-9)


def test_set_is_extended_forward_through_the_cycles_the_classifier_missed(rng):
    gravity = np.concatenate([rest(100, rng), cycles(8), rest(200, rng)])
    sets = extend_sets((counted([100, 140, 180]),), gravity, RATE, 0.9)
    assert len(sets) == 1
    assert sets[0].reps == 8
    assert starts_of(sets[0]) == pytest.approx([100 + PERIOD * i for i in range(8)], abs=2)


def test_set_is_extended_backward(rng):
    gravity = np.concatenate([rest(100, rng), cycles(6), rest(200, rng)])
    sets = extend_sets((counted([260, 300]),), gravity, RATE, 0.9)
    assert sets[0].reps == 6
    assert starts_of(sets[0])[0] == pytest.approx(100, abs=2)


def test_a_complete_set_followed_by_rest_gains_nothing(rng):
    gravity = np.concatenate([rest(100, rng), cycles(5), rest(200, rng)])
    original = (counted([100 + PERIOD * i for i in range(5)]),)
    assert extend_sets(original, gravity, RATE, 0.9) == original


def test_a_small_movement_of_the_same_shape_is_not_a_repetition(rng):
    gravity = np.concatenate([rest(100, rng), cycles(3), cycles(3, amplitude=15.0), rest(100, rng)])
    sets = extend_sets((counted([100, 140, 180]),), gravity, RATE, 0.9)
    assert sets[0].reps == 3


def test_a_different_movement_is_not_a_repetition(rng):
    gravity = np.concatenate([rest(100, rng), cycles(3), cycles(3, axis="y"), rest(100, rng)])
    sets = extend_sets((counted([100, 140, 180]),), gravity, RATE, 0.9)
    assert sets[0].reps == 3


def test_threshold_zero_and_single_repetition_sets_are_left_alone(rng):
    gravity = np.concatenate([rest(100, rng), cycles(8), rest(100, rng)])
    three = (counted([100, 140, 180]),)
    assert extend_sets(three, gravity, RATE, 0.0) == three
    one = (counted([100]),)
    assert extend_sets(one, gravity, RATE, 0.9) == one


def test_extension_stops_at_the_next_set(rng):
    gravity = np.concatenate([rest(100, rng), cycles(4), cycles(4, axis="y"), rest(100, rng)])
    sets = (counted([100, 140]), counted([260, 300], exercise="sit_up"))
    extended = extend_sets(sets, gravity, RATE, 0.9)
    assert [s.reps for s in extended] == [4, 4]
    assert extended[0].end_s <= extended[1].start_s


def test_a_missed_repetition_between_two_split_sets_is_counted_once(rng):
    # The classifier split one set of 6 into 2 + 3, missing the third repetition.
    labels = ["break", "squat.first_half", "squat.second_half"]
    gravity = np.concatenate([rest(100, rng), cycles(6), rest(100, rng)])
    phases = np.zeros(len(gravity), np.int64)
    for i in (0, 1, 3, 4, 5):
        s = 100 + PERIOD * i
        phases[s : s + MOVE // 2], phases[s + MOVE // 2 : s + MOVE] = 1, 2
    probs = np.eye(3)[phases]
    params = CountingParams(min_run_s=dict.fromkeys(labels, 0.2), set_gap_s=4.0, smoothing_s=0.0, cycle_match=0.9)
    assert [s.reps for s in count_phases(phases, labels, RATE, params)] == [2, 3]
    _, sets = count_probabilities(probs, labels, RATE, params, gravity)
    assert [s.reps for s in sets] == [6]
    _, without = count_probabilities(probs, labels, RATE, params, None)
    assert [s.reps for s in without] == [2, 3]


def test_phases_show_the_repetitions_the_extension_added(rng):
    labels = ["break", "squat.first_half", "squat.second_half"]
    gravity = np.concatenate([rest(100, rng), cycles(6), rest(100, rng)])
    phases = np.zeros(len(gravity), np.int64)
    for i in (0, 1):
        s = 100 + PERIOD * i
        phases[s : s + MOVE // 2], phases[s + MOVE // 2 : s + MOVE] = 1, 2
    params = CountingParams(min_run_s=dict.fromkeys(labels, 0.2), set_gap_s=4.0, smoothing_s=0.0, cycle_match=0.9)
    decoded, sets = count_probabilities(np.eye(3)[phases], labels, RATE, params, gravity)
    assert [s.reps for s in sets] == [6]
    # Counted again from the phases alone: the four added repetitions are there, in the cycles.
    assert [s.reps for s in count_phases(decoded, labels, RATE, params)] == [6]
    for rep in sets[0].repetitions:
        start, stop = round(rep.start_s * RATE), round(rep.end_s * RATE)
        assert (decoded[start:stop] != 0).all()
    assert (decoded[:95] == 0).all()
    assert (decoded[100 + 6 * PERIOD + 5 :] == 0).all()
    _, unchanged = count_probabilities(np.eye(3)[phases], labels, RATE, params, None)
    assert [s.reps for s in unchanged] == [2]


def test_old_counting_parameters_leave_the_extension_off():
    assert CountingParams.from_dict({"min_run_s": {}, "set_gap_s": 6.0}).cycle_match == 0.0


def test_gravity_columns_need_all_three_axes():
    x = np.arange(12, dtype=float).reshape(3, 4)
    assert gravity_columns(x, ("gravity_x", "gravity_y", "gravity_z", "gyro_x")).shape == (3, 3)
    assert gravity_columns(x, ("gravity_x", "gravity_y", "user_acc_x", "gyro_x")) is None


@pytest.mark.skipif(not EXERMOTE.is_dir(), reason=f"needs the Exermote recordings in {EXERMOTE}")
def test_on_exermote_labels_complete_sets_gain_nothing_and_truncated_sets_regain_their_repetitions():
    """Every labelled set, counted in full, is extended by nothing (no repetition in rest);
    cut to its first three repetitions, it gets back most of the rest and never more."""
    from inference.lab.train import Hyperparameters, load_exermote, prepare

    hp = Hyperparameters()
    full, truncated, regained, missing = 0, 0, 0, 0
    for recording in load_exermote(EXERMOTE):
        p = prepare(recording, hp)
        rs = runs(p.labels)
        reps = [
            Repetition(s / RATE, rs[j + 1][2] / RATE)
            for j, (v, s, _) in enumerate(rs[:-1])
            if str(v).endswith("first_half") and str(rs[j + 1][0]).endswith("second_half")
        ]
        gravity = gravity_columns(p.x, hp.channels)
        for t in true_sets(p.labels, p.set_break, RATE):
            inside = tuple(r for r in reps if t["start_s"] <= r.start_s < t["end_s"])
            whole = CountedSet(t["exercise"], "classifier", inside)
            full += extend_sets((whole,), gravity, RATE, 0.9)[0].reps - whole.reps
            if len(inside) > 4:
                cut = CountedSet(t["exercise"], "classifier", inside[:3])
                got = extend_sets((cut,), gravity, RATE, 0.9)[0].reps
                truncated += 1
                regained += got - 3
                missing += len(inside) - 3
                assert got <= len(inside)
    assert full == 0
    assert truncated > 100
    assert regained / missing > 0.8  # 613 of 671 when written
