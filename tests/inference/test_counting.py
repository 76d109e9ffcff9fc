import itertools

import numpy as np
import pytest

from inference.counting import CountingParams, count_phases, remove_flicker, runs
from inference.lab.train import learn_counting_params
from inference.scoring import true_sets

LABELS = ["break", "squat.first_half", "squat.second_half", "sit_up.first_half", "sit_up.second_half"]
B, F, S, F2, S2 = range(5)
RATE = 10.0
PARAMS = CountingParams(min_run_s=dict.fromkeys(LABELS, 0.3), set_gap_s=5.0)


def seq(*parts):
    """seq((B, 10), (F, 8)) -> [0]*10 + [1]*8."""
    return np.concatenate([np.full(n, v) for v, n in parts])


def rep(first=F, second=S, n=8, pause=10):
    return [(first, n), (second, n), (B, pause)]


def test_counts_break_first_second_as_one_repetition():
    sets = count_phases(seq((B, 20), *rep(), *rep(), *rep()), LABELS, RATE, PARAMS)
    assert len(sets) == 1
    assert sets[0].exercise == "squat"
    assert sets[0].reps == 3
    assert sets[0].repetitions[0].start_s == pytest.approx(2.0)
    assert sets[0].repetitions[0].end_s == pytest.approx(3.6)


def test_first_half_without_second_half_counts_nothing():
    assert count_phases(seq((B, 20), (F, 10), (B, 20)), LABELS, RATE, PARAMS) == ()


def test_second_half_of_another_exercise_counts_nothing():
    assert count_phases(seq((B, 20), (F, 10), (S2, 10), (B, 20)), LABELS, RATE, PARAMS) == ()


def test_one_sample_flicker_counts_nothing():
    # a one-sample break inside a first half, and one-sample first/second halves in rest
    phases = seq((B, 20), (F, 4), (B, 1), (F, 4), (S, 8), (B, 30), (F, 1), (S, 1), (B, 30))
    sets = count_phases(phases, LABELS, RATE, PARAMS)
    assert [s.reps for s in sets] == [1]


def test_a_gap_longer_than_the_set_gap_starts_a_new_set():
    phases = seq((B, 10), *rep(), *rep(pause=70), *rep(), *rep())
    sets = count_phases(phases, LABELS, RATE, PARAMS)
    assert [s.reps for s in sets] == [2, 2]
    assert sets[1].start_s > sets[0].end_s + PARAMS.set_gap_s


def test_a_set_takes_the_majority_exercise():
    phases = seq((B, 10), *rep(), *rep(F2, S2), *rep(), (B, 80), *rep(F2, S2))
    sets = count_phases(phases, LABELS, RATE, PARAMS)
    assert [(s.exercise, s.reps) for s in sets] == [("squat", 3), ("sit_up", 1)]


def test_second_half_straight_into_first_half_is_a_new_repetition():
    phases = seq((B, 10), (F, 8), (S, 8), (F, 8), (S, 8), (B, 10))
    assert [s.reps for s in count_phases(phases, LABELS, RATE, PARAMS)] == [2]


def test_remove_flicker_merges_into_longer_neighbour():
    out = remove_flicker(seq((B, 10), (F, 1), (S, 5)), LABELS, {"squat.first_half": 3})
    assert list(out) == [B] * 10 + [B] + [S] * 5


def test_learn_counting_params_from_labels():
    labels = np.array(
        ["break"] * 50
        + ["squat.first_half"] * 10
        + ["squat.second_half"] * 12
        + ["break"] * 20
        + ["squat.first_half"] * 8
        + ["squat.second_half"] * 12
        + ["break"] * 100
        + ["squat.first_half"] * 10
        + ["squat.second_half"] * 10
        + ["break"] * 5
    )
    set_break = np.zeros(labels.size, bool)
    set_break[:50] = True
    set_break[132:232] = True
    params = learn_counting_params([labels], [set_break], RATE)
    assert params.min_run_s["squat.first_half"] == pytest.approx(0.4)
    # halfway between the longest pause in a set (2 s) and the shortest rest between sets (10 s)
    assert params.set_gap_s == pytest.approx(6.0)


def test_true_sets_count_first_half_runs():
    labels = np.array(["break"] * 10 + ["squat.first_half", "squat.second_half", "break"] * 3 + ["break"] * 10)
    set_break = np.zeros(labels.size, bool)
    set_break[:10] = True
    set_break[-10:] = True
    truth = true_sets(labels, set_break, RATE)
    assert truth == [{"exercise": "squat", "reps": 3, "start_s": 1.0, "end_s": 1.9}]


def test_runs():
    assert runs([1, 1, 2, 2, 2, 1]) == [(1, 0, 2), (2, 2, 5), (1, 5, 6)]
    assert runs([]) == []


def test_viterbi_finds_a_weak_first_half_before_a_clear_second_half():
    from inference.counting import decode_phases

    probs = np.full((60, 5), 0.02)
    probs[:, B] = 0.9
    probs[20:28, B], probs[20:28, F] = 0.6, 0.35  # the classifier prefers break here
    probs[28:36, B], probs[28:36, S] = 0.02, 0.9
    probs /= probs.sum(axis=1, keepdims=True)
    phases = decode_phases(probs, LABELS, RATE, PARAMS)
    assert [s.reps for s in count_phases(phases, LABELS, RATE, PARAMS)] == [1]
    assert (phases[28:36] == S).all()


def test_viterbi_never_emits_a_second_half_without_a_first_half():
    from inference.counting import decode_phases, runs

    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(5), size=500)
    phases = decode_phases(probs, LABELS, RATE, PARAMS)
    rs = runs(phases)
    for (a, _, _), (b, _, _) in itertools.pairwise(rs):
        if b in (S, S2):
            assert a == b - 1
    # every run lasts at least its minimum duration (except a cut-off last run)
    assert all(stop - start >= 3 for _, start, stop in rs[:-1])


def _dense_viterbi(probs, labels, params):
    """Reference: the textbook Viterbi over the full (s, s) transition matrix of the grammar."""
    from inference.counting import _allowed_transitions

    lengths = [max(1, round(params.min_run_s.get(name, 0.0) * RATE)) for name in labels]
    phase_of = np.repeat(np.arange(len(labels)), lengths)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    last = first + np.asarray(lengths) - 1
    s = len(phase_of)
    log_a = np.full((s, s), -np.inf)
    for i in range(len(labels)):
        for j in range(first[i], last[i]):
            log_a[j, j + 1] = 0.0
        log_a[last[i], last[i]] = 0.0
    for i, j in zip(*np.nonzero(_allowed_transitions(labels)), strict=True):
        log_a[last[i], first[j]] = 0.0
    log_b = np.log(np.clip(probs, 1e-6, 1.0))[:, phase_of]
    delta = np.where(np.isin(np.arange(s), first), 0.0, -np.inf) + log_b[0]
    back = np.zeros((len(probs), s), int)
    for t in range(1, len(probs)):
        scores = delta[:, None] + log_a
        back[t] = scores.argmax(axis=0)
        delta = scores[back[t], np.arange(s)] + log_b[t]
    path = [int(delta.argmax())]
    for t in range(len(probs) - 1, 0, -1):
        path.append(back[t, path[-1]])
    return phase_of[path[::-1]]


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_equals_the_dense_reference(seed):
    from inference.counting import decode_phases

    rng = np.random.default_rng(seed)
    params = CountingParams(min_run_s={name: rng.uniform(0.05, 0.6) for name in LABELS}, set_gap_s=5.0)
    probs = rng.dirichlet(np.full(5, 0.3), size=400)
    np.testing.assert_array_equal(decode_phases(probs, LABELS, RATE, params), _dense_viterbi(probs, LABELS, params))


def test_a_one_off_repetition_of_another_exercise_at_a_set_edge_is_dropped():
    squat, sit_up = rep(), rep(F2, S2)
    after = count_phases(seq((B, 20), *squat, *squat, *squat, *sit_up), LABELS, RATE, PARAMS)
    assert [(s.exercise, s.reps) for s in after] == [("squat", 3)]
    before = count_phases(seq((B, 20), *sit_up, *squat, *squat, *squat), LABELS, RATE, PARAMS)
    assert [(s.exercise, s.reps) for s in before] == [("squat", 3)]


def test_a_repetition_of_another_exercise_inside_a_set_is_kept():
    squat, sit_up = rep(), rep(F2, S2)
    sets = count_phases(seq((B, 20), *squat, *squat, *sit_up, *squat, *squat), LABELS, RATE, PARAMS)
    assert [(s.exercise, s.reps) for s in sets] == [("squat", 5)]


def test_two_repetitions_of_another_exercise_at_an_edge_are_kept():
    squat, sit_up = rep(), rep(F2, S2)
    sets = count_phases(seq((B, 20), *squat, *squat, *squat, *sit_up, *sit_up), LABELS, RATE, PARAMS)
    assert sum(s.reps for s in sets) == 5


def test_break_weight_drops_a_hesitant_repetition_and_keeps_a_clear_one():
    from dataclasses import replace

    from inference.counting import count_probabilities

    probs = np.full((120, 5), 0.01)
    probs[:, B] = 0.96
    for start, share in ((20, 0.9), (70, 0.55)):  # a clear squat, then a hesitant one
        probs[start : start + 16, B] = 1 - share
        probs[start : start + 8, F] = share
        probs[start + 8 : start + 16, S] = share
    probs /= probs.sum(axis=1, keepdims=True)
    as_is = replace(PARAMS, smoothing_s=0.0)
    counted = {
        weight: [s.reps for s in count_probabilities(probs, LABELS, RATE, replace(as_is, break_weight=weight))[1]]
        for weight in (1.0, 1.5)
    }
    assert counted == {1.0: [2], 1.5: [1]}
    assert CountingParams.from_dict({"set_gap_s": 5.0}).break_weight == 1.0  # metadata from before the weight
    with pytest.raises(ValueError, match="break_weight must be positive"):
        replace(PARAMS, break_weight=0.0)
