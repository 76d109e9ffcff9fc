"""The generic counter's parameters chosen per fold (inference.lab.counter_folds)."""

from __future__ import annotations

import numpy as np
import pytest

from inference import generic
from inference.lab.counter_folds import DEFAULT_DATA, choose, combinations, exermote_workouts, held_out, parameters


def test_combinations_cover_the_grid():
    configs = combinations({"A": (1, 2), "B": (3, 4, 5)})
    assert len(configs) == 6
    assert configs[0] == {"A": 1, "B": 3}
    assert configs[-1] == {"A": 2, "B": 5}


def test_parameters_are_set_for_the_block_and_restored():
    before = generic.MIN_PERIODICITY
    with parameters({"MIN_PERIODICITY": 0.9}):
        assert generic.MIN_PERIODICITY == 0.9
    assert before == generic.MIN_PERIODICITY
    with pytest.raises(RuntimeError), parameters({"MIN_PERIODICITY": 0.8}):
        raise RuntimeError
    assert before == generic.MIN_PERIODICITY


def test_choose_prefers_within_one_then_mae_then_the_shipped_values():
    true = np.array([5, 5, 5, 5])
    configs = [{"x": 0}, {"x": 1}, {"x": 2}]
    every = np.ones(4, dtype=bool)
    pred = np.array([[5, 5, 5, 0], [5, 5, 6, 6], [6, 6, 6, 6]])
    assert choose(pred, true, every, configs, {"x": 0}) == 1  # 100 % +-1, MAE 0.5
    pred = np.array([[5, 5, 5, 6], [6, 5, 5, 5], [9, 9, 9, 9]])  # tie on +-1 and MAE
    assert choose(pred, true, every, configs, {"x": 1}) == 1
    assert choose(pred, true, np.array([True, False, False, False]), configs, {"x": 2}) == 0
    # Only allowed configurations compete (the rest bound).
    pred = np.array([[5, 5, 0, 0], [5, 5, 6, 6], [6, 6, 6, 9]])
    assert choose(pred, true, every, configs, {"x": 0}, allowed=np.array([True, False, True])) == 2


def test_held_out_scores_each_fold_with_what_the_other_folds_chose():
    # Config 0 counts class a right and b wrong; config 1 the reverse. Holding out a, the
    # routine sees only b and picks config 1, which is wrong on a: the held-out figure says so.
    rows = [{"dataset": "cara", "label": lab, "subject": "P1", "true": 10} for lab in ("a", "a", "b", "b", "b")]
    pred = np.array([[10, 10, 0, 0, 0], [0, 0, 10, 10, 10]])
    classes = np.array([r["label"] for r in rows])
    configs = [{"x": 0}, {"x": 1}]
    out = held_out({"rows": rows, "pred": pred}, {c: classes == c for c in ("a", "b")}, configs, {"x": 0})
    assert out["chosen"] == {"a": {"x": 1}, "b": {"x": 0}}
    assert out["overall"]["all"]["sets"] == 5
    assert out["overall"]["all"]["within1"] == 0.0
    assert out["per_class"]["cara/a"]["mae"] == 10.0


@pytest.mark.skipif(not (DEFAULT_DATA / "exermote").is_dir(), reason="../shared/data/exermote is absent")
def test_exermote_truth_matches_its_readme():
    workouts = exermote_workouts(DEFAULT_DATA)
    assert len(workouts) == 30
    sets = [t for _, _, truth, _, _ in workouts for t in truth]
    assert len(sets) == 161
    assert sum(t["reps"] for t in sets) == 1150
    _, rec, truth, set_break, rate = workouts[0]
    assert rate == pytest.approx(10, rel=0.05)
    assert all(rec.time_s[0] <= t["start_s"] < t["end_s"] <= rec.time_s[-1] for t in truth)
    assert set_break.any()
    assert not set_break.all()
