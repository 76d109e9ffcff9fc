import shutil
from dataclasses import replace

import numpy as np
import pytest

from inference.counting import CountingParams
from inference.lab.__main__ import main
from inference.lab.evaluate import (
    choose_break_weight,
    combine_folds,
    learn_counting_params_for,
    markdown,
    rescore,
    save_heldout,
    score_heldout,
)
from inference.lab.train import Hyperparameters, load_exermote, prepare
from inference.scoring import Labelled, summarise


def test_markdown_states_the_share_of_timing_errors():
    fold = summarise([], phantom=0, rest_s=60.0, correct7=90, correct4=95, frames=100)
    fold["frame_errors_4_near_boundary"] = 0.86
    text = markdown({"folds": {"1": fold}, "overall": fold})
    assert "86% of the 4-class frame errors lie within 0.5 s" in text
    fold.pop("frame_errors_4_near_boundary")
    assert "4-class frame errors" not in markdown({"folds": {"1": fold}, "overall": fold})


def test_rescore_counts_saved_probabilities_again_and_checks_the_data(exermote_files, tmp_path, capsys):
    data = tmp_path / "exermote"
    data.mkdir()
    # Athlete 2's file sorts before athlete 1's: loso's order is by athlete, not by file.
    for name in ("2017-04-22_15-51-42_individual-2.csv", "2017-04-23_12-08-23_individual-1.csv"):
        shutil.copy(exermote_files[0].parent / name, data / name)
    hp = Hyperparameters()
    prepared = [prepare(r, hp) for r in load_exermote(data)]
    ordered = sorted(prepared, key=lambda p: p.subject)
    assert [p.subject for p in ordered] == ["1", "2"] != [p.subject for p in prepared]
    params = replace(learn_counting_params_for(ordered, hp.sample_rate_hz), cycle_match=hp.cycle_match)
    labelled = [np.eye(len(hp.labels), dtype=np.float32)[p.y] for p in ordered]
    report = {"hyperparameters": hp.to_dict()}

    save_heldout(tmp_path / "labels.npz", report, [(p, q, params) for p, q in zip(ordered, labelled, strict=True)])
    perfect = rescore(tmp_path / "labels.npz", data)
    assert set(perfect["folds"]) == {"1", "2"}
    assert perfect["overall"]["sets"] > 5
    assert perfect["overall"]["sets_exact"] == 1.0
    assert perfect["overall"]["phantom_reps"] == 0
    assert perfect["overall"]["frame_accuracy_4"] > 0.99

    # Athlete 2's probabilities say rest throughout: each of the athlete's sets is missed.
    rest = np.zeros_like(labelled[1])
    rest[:, hp.labels.index("break")] = 1.0
    save_heldout(tmp_path / "rest.npz", report, [(ordered[0], labelled[0], params), (ordered[1], rest, params)])
    missed = rescore(tmp_path / "rest.npz", data)
    assert missed["folds"]["1"]["sets_exact"] == 1.0
    assert missed["folds"]["2"]["missed_sets"] == missed["folds"]["2"]["sets"] > 0
    assert missed["overall"]["missed_sets"] == missed["folds"]["2"]["sets"]

    assert main(["rescore", str(tmp_path / "rest.npz"), "--data", str(data), "--cycle-match", "0"]) == 0
    rows = {line.split(" | ")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert " 100.0% | 100.0% | 0.00 | 0 | 0 (0.0/h rest) |" in rows["| 1"]
    assert f"| {missed['folds']['2']['sets']} | 0.0% |" in rows["| 2"]
    assert main(["rescore", str(tmp_path / "absent.npz"), "--data", str(data)]) == 2
    assert "rescore: " in capsys.readouterr().err
    assert main(["rescore", str(tmp_path / "rest.npz"), "--data", str(data), "--break-weight", "0"]) == 2
    assert "break_weight must be positive" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not counting parameters: smoothing"):
        rescore(tmp_path / "labels.npz", data, counting={"smoothing": 1.0})
    (tmp_path / "notes.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="was not written by --save-probabilities"):
        rescore(tmp_path / "notes.npz", data)
    (data / "2017-04-22_15-51-42_individual-2.csv").unlink()
    with pytest.raises(ValueError, match="does not hold the labelled recordings"):
        rescore(tmp_path / "labels.npz", data)


def test_combine_folds_pools_sets_frames_and_rest_instead_of_averaging():
    def fold(rows, phantom, rest_s, c4, near):
        out = summarise(rows, phantom=phantom, rest_s=rest_s, correct7=0, correct4=int(np.trace(c4)), frames=0)
        out.update(confusion_7=c4.tolist(), confusion_4=c4.tolist(), set_rows=rows)
        out["frame_errors_4_near_boundary"] = near
        return out

    small = fold([{"true": 5, "pred": 5}], 1, 1800.0, np.array([[90, 10], [0, 0]]), 1.0)
    large = fold([{"true": 8, "pred": 6}] * 3, 0, 5400.0, np.array([[880, 0], [20, 100]]), 0.5)
    overall = combine_folds({"1": small, "2": large})
    assert overall["sets"] == 4
    assert overall["sets_exact"] == 0.25
    assert overall["count_mae"] == 1.5
    assert overall["frame_accuracy_4"] == (90 + 980) / 1100
    assert overall["phantom_reps_per_rest_hour"] == 0.5
    assert overall["frame_errors_4_near_boundary"] == (10 * 1.0 + 20 * 0.5) / 30


def _squats(hp: Hyperparameters, exercise_share: float, *, phantom: bool) -> tuple[Labelled, np.ndarray]:
    """10 s of rest, three squats (0.8 + 0.8 s, 1 s pauses), 10 s of rest; probabilities give each
    squat sample ``exercise_share`` against break and, with ``phantom``, a squat-like dip in rest."""
    first, second, rest = (hp.labels.index(n) for n in ("squat.first_half", "squat.second_half", "break"))
    y = np.full(100 + 3 * 26 + 100, rest)
    for start in range(100, 178, 26):
        y[start : start + 8], y[start + 8 : start + 16] = first, second
    set_break = np.ones(len(y), bool)
    set_break[100:178] = False
    probs = np.full((len(y), len(hp.labels)), 0.01)
    probs[:, rest] = 0.95
    squat = np.isin(y, (first, second))
    probs[squat, rest], probs[squat, y[squat]] = 1 - exercise_share, exercise_share
    if phantom:  # 5 s after the set: the network is torn, and leans to a squat
        probs[228:244, rest] = 0.4
        probs[228:236, first], probs[236:244, second] = 0.55, 0.55
    probs /= probs.sum(axis=1, keepdims=True)
    names = np.array(hp.labels)[y]
    x = np.zeros((len(y), len(hp.channels)), np.float32)
    return Labelled(x=x, y=y, labels=names, set_break=set_break, subject=None), probs


def test_each_fold_is_counted_with_the_break_weight_the_other_folds_choose():
    hp = Hyperparameters()
    params = CountingParams(min_run_s=dict.fromkeys(hp.labels, 0.3), set_gap_s=3.0, smoothing_s=0.0)
    # Athlete 1's squats are faint; athletes 2 and 3 move clearly but make one squat-like dip each.
    recordings = {"1": _squats(hp, 0.52, phantom=False), "2": _squats(hp, 0.9, phantom=True)}
    recordings["3"] = recordings["2"]
    heldout = {s: ([p], [probs], params) for s, (p, probs) in recordings.items()}

    folds, overall = score_heldout(heldout, hp, (1.0, 1.5))

    # 1.5 removes athletes 2 and 3's dips, so athlete 1 is counted with it although it
    # loses all three of athlete 1's squats: athlete 1's own labels did not choose.
    assert folds["1"]["break_weight"] == 1.5
    assert folds["1"]["set_rows"] == [{"exercise": "squat", "true": 3, "pred": 0, "start_s": 10.0}]
    # For athlete 2, athletes 1 and 3 disagree: 1.5 costs three squats, 1.0 one dip.
    assert folds["2"]["break_weight"] == 1.0
    assert folds["2"]["phantom_reps"] == 1
    assert folds["2"]["sets_exact"] == 1.0
    assert overall["break_weight"] == 1.0  # on all three: 2 dips at 1.0 against 3 squats at 1.5
    assert overall["missed_sets"] == 1
    assert score_heldout(heldout, hp)[0]["1"]["break_weight"] == 1.0  # no candidates: as the network says


def test_choose_break_weight_puts_counts_before_frames_and_then_stays_near_one():
    def fold(errors, phantom, frame_errors):
        return {
            "set_rows": [{"true": 10, "pred": 10 + errors}],
            "phantom_reps": phantom,
            "confusion_4": [[100, frame_errors], [0, 100]],
        }

    assert choose_break_weight({1.0: [fold(1, 0, 5)], 1.2: [fold(0, 0, 50)], 0.8: [fold(0, 1, 0)]}) == 1.2
    assert choose_break_weight({1.0: [fold(0, 0, 9)], 0.8: [fold(0, 0, 8)], 1.1: [fold(0, 0, 8)]}) == 1.1
    assert choose_break_weight({1.3: [fold(0, 0, 8)], 1.0: [fold(0, 0, 8)], 0.8: [fold(0, 0, 8)]}) == 1.0
    pooled = {1.0: [fold(2, 0, 0), fold(0, 0, 0)], 1.5: [fold(0, 1, 0), fold(0, 0, 0)]}
    assert choose_break_weight(pooled) == 1.5
