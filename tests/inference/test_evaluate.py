import shutil
from dataclasses import replace

import numpy as np
import pytest

from inference.__main__ import main
from inference.evaluate import (
    combine_folds,
    errors_near_boundaries,
    learn_counting_params_for,
    markdown,
    rescore,
    save_heldout,
    summarise,
)
from inference.train import Hyperparameters, load_exermote, prepare


def test_errors_near_boundaries_tells_timing_errors_from_wrong_classes():
    true4 = np.array([0] * 20 + [2] * 20 + [0] * 20)
    pred4 = true4.copy()
    pred4[17:20] = 2  # the squat predicted 0.3 s early: a timing error
    pred4[50] = 3  # a sit-up frame in the middle of a break: a wrong class
    assert errors_near_boundaries(true4, pred4, 10.0) == (4, 3)
    assert errors_near_boundaries(true4, true4, 10.0) == (0, 0)
    assert errors_near_boundaries(np.zeros(10, int), np.ones(10, int), 10.0) == (10, 0)


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
