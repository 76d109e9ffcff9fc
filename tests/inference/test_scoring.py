import numpy as np
import pytest

from inference.io import read_recording
from inference.pipeline import get_default_model
from inference.scoring import errors_near_boundaries, evaluate_model


def test_errors_near_boundaries_tells_timing_errors_from_wrong_classes():
    true4 = np.array([0] * 20 + [2] * 20 + [0] * 20)
    pred4 = true4.copy()
    pred4[17:20] = 2  # the squat predicted 0.3 s early: a timing error
    pred4[50] = 3  # a sit-up frame in the middle of a break: a wrong class
    assert errors_near_boundaries(true4, pred4, 10.0) == (4, 3)
    assert errors_near_boundaries(true4, true4, 10.0) == (0, 0)
    assert errors_near_boundaries(np.zeros(10, int), np.ones(10, int), 10.0) == (10, 0)


def test_evaluate_model_scores_a_model_on_labelled_recordings(exermote_files):
    model = get_default_model()
    figures = evaluate_model(model, [read_recording(exermote_files[0], "exermote")])
    assert figures["recordings"] == 1
    assert figures["sets"] >= 1
    assert 0.8 <= figures["frame_accuracy_4"] <= 1.0
    assert figures["sets_within_1"] == pytest.approx(1.0)  # a session the shipped model was trained on
    assert "set_rows" not in figures


def test_evaluate_model_refuses_recordings_without_labels(exermote_files):
    from dataclasses import replace

    recording = replace(read_recording(exermote_files[0], "exermote"), labels=None)
    with pytest.raises(ValueError, match="labels"):
        evaluate_model(get_default_model(), [recording])
