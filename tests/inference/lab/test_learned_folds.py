"""Tests of the learned counter's lab: folds, exemplar pairs, scoring helpers and the routing rule."""

from __future__ import annotations

import numpy as np
import pytest

from inference.density import EXEMPLAR_SCALE_BOUNDS, scale_for
from inference.lab import learned_folds as lf
from inference.lab.train_counter import Example, augmented, random_rotation, stretch


def _ex(dataset, label, subject, name, count=10, session=1, order=0, kind="set"):
    return Example(dataset, label, subject, name, np.zeros((100, 3), np.float32), count, kind=kind,
                   session=session, order=order)  # fmt: skip


def _examples():
    out = []
    for p in ("P1", "P2", "P3", "P4", "P5", "P6"):
        for c in ("Crunch", "Sawing", "Typing", "Pullup"):
            out.append(_ex("cara", c, p, f"cara/{c}/{p}/s1.csv", session=1, order=1))
            out.append(_ex("cara", c, p, f"cara/{c}/{p}/s2a.csv", session=2, order=2))
            out.append(_ex("cara", c, p, f"cara/{c}/{p}/s2b.csv", session=2, order=2))
    for e, n in (("curl", 3), ("row", 2)):
        out += [_ex("muvr", e, "muvr", f"muvr/{e}_{i:02d}.csv", order=i) for i in range(1, n + 1)]
    out += [_ex("exermote", "squat", a, f"x{a}.csv#0") for a in ("1", "2", "3", "4")]
    return out


def test_folds_hold_out_whole_subjects_and_class_groups():
    examples = _examples()
    folds = lf.folds(examples)
    assert set(folds) == {"subject-P1-P2-P3", "subject-P4-P5-P6"} | {f"classes-{g}" for g in range(lf.CLASS_FOLDS)}
    for name, (train, held) in folds.items():
        assert not set(train) & set(held)
        trained = {examples[i].subject for i in train if examples[i].dataset == "exermote"}
        assert trained == {"1", "2"}, "Exermote athletes 3-4 never train"
        if name.startswith("subject"):
            held_subjects = {examples[i].subject for i in held}
            assert not held_subjects & {examples[i].subject for i in train}
        else:
            held_classes = {examples[i].key for i in held}
            assert not held_classes & {examples[i].key for i in train}
    every = sorted(i for name, (_, held) in folds.items() if name.startswith("classes") for i in held)
    assert every == [i for i, e in enumerate(examples) if e.dataset in ("cara", "muvr")]


def test_class_groups_are_stable():
    keys = [f"cara/c{i}" for i in range(10)]
    assert lf.class_groups(keys) == lf.class_groups(list(reversed(keys)))


def test_exemplar_pairs_follow_the_protocol():
    examples = _examples()
    pairs = lf.exemplar_pairs(examples)
    assert pairs["cara/Sawing/P2/s2a.csv"] == "cara/Sawing/P2/s1.csv"
    assert "cara/Sawing/P2/s1.csv" not in pairs
    assert pairs["muvr/curl_03.csv"] == pairs["muvr/curl_02.csv"] == "muvr/curl_01.csv"
    assert "muvr/curl_01.csv" not in pairs


def test_hybrid_and_learned_counts():
    fs = lf.GRID_HZ
    d = np.zeros(int(60 * fs))
    d[int(10 * fs) : int(20 * fs)] = 6 / (10 * fs)
    assert lf.hybrid_count(d, [[10.0, 20.0]]) == 6
    assert lf.hybrid_count(d, [[10.0, 20.0]], scale=0.5) == 3
    assert lf.hybrid_count(d, [[40.0, 50.0]]) == 0
    assert lf.learned_count(d, lf.CounterSpec(version="t")) == 6
    assert scale_for(d, 12) == pytest.approx(2.0)
    assert scale_for(np.zeros(10), 5) == EXEMPLAR_SCALE_BOUNDS[1]


def test_routing_takes_the_lowest_held_out_error():
    rows = []
    for i in range(10):
        base = {"group": "exercise", "dataset": "muvr", "peak_class": False, "true": 10}
        rows.append({**base, "generic": 10 + (i % 3), "learned": 14, "hybrid": 13, "learned_exemplar": 10,
                     "hybrid_exemplar": 12})  # fmt: skip
        base = {"group": "daily", "dataset": "cara", "peak_class": False, "true": 10}
        rows.append({**base, "generic": 11, "learned": 10, "hybrid": 12, "learned_exemplar": 15,
                     "hybrid_exemplar": 16})  # fmt: skip
    routing = lf.choose_routing({"rows": rows})
    assert routing["exercise"] == {"plain": "generic", "exemplar": "learned"}
    assert routing["unknown"] == {"plain": "learned", "exemplar": "generic"}


def test_augmentation_keeps_the_count_and_the_shape_of_the_input():
    rng = np.random.default_rng(0)
    r = random_rotation(rng)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)
    assert stretch(np.zeros((100, 3)), 1.3).shape == (130, 3)
    ex = _ex("cara", "Crunch", "P1", "x", count=7)
    ex.acc = (np.array([0.0, 0.0, 9.81]) + rng.normal(0, 0.5, size=(200, 3))).astype(np.float32)
    x, c = augmented(ex, rng, rests=[np.tile([0.0, 9.81, 0.0], (300, 1))])
    assert c == 7
    assert x.shape[1] == 6
    assert np.isfinite(x).all()


def test_exemplar_period_is_the_one_that_counts_the_exemplar_right():
    from inference.io import Recording
    from tests.inference.test_generic import _arm

    t, acc = _arm(50.0, [(2.0, 8)], 2.0, noise=0.05)
    rec = Recording(time_s=t, samples=acc, channels=("acc_x", "acc_y", "acc_z"), source_format="csv")
    period = lf.exemplar_period(rec, 8)
    assert period == pytest.approx(2.0, rel=0.2)
    lo, hi = lf.exemplar_period_bounds(period)
    assert lo < 2.0 < hi
