import numpy as np

from inference.evaluate import errors_near_boundaries, markdown, summarise


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
