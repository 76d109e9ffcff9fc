"""The upload's method check reads the spec the exercise list shows (selectors.counting_spec)."""

from __future__ import annotations

import numpy as np
import pytest

from fitness.workouts import selectors
from fitness.workouts.services.uploads import check_countable
from inference.io import Recording
from inference.model import DEFAULT_MODEL_PATH, read_spec

pytestmark = pytest.mark.django_db


def _model_channels_recording(spec, seconds: float = 60.0) -> Recording:
    time_s = np.arange(0, seconds, 1 / spec.sample_rate_hz)
    samples = np.zeros((len(time_s), len(spec.channels)), dtype=np.float32)
    return Recording(time_s=time_s, samples=samples, channels=spec.channels, source_format="csv")


def test_the_upload_check_follows_counting_spec(monkeypatch):
    spec = read_spec(DEFAULT_MODEL_PATH)
    recording = _model_channels_recording(spec)
    assert check_countable(recording=recording, exercise_hint=None) == "classifier"
    monkeypatch.setattr(selectors, "counting_spec", lambda: None)
    assert check_countable(recording=recording, exercise_hint=None) != "classifier"
