"""Recording + model -> CountResult: what workers and the CLI call.

Method choice (architecture.md, "Data flow"):

- the classifier (CNN-LSTM phases + state machine) when the recording has the model's
  channels and the user's exercise hint is absent or names an exercise the model knows;
- the peak counter (:mod:`inference.peaks`) when the hint is ``jump_rope``, names an
  exercise the model has no phases for, or the recording lacks the model's channels.
"""

from __future__ import annotations

import numpy as np

from inference.counting import CountingParams, count_probabilities
from inference.cycles import gravity_columns
from inference.io import Recording
from inference.model import DEFAULT_MODEL_PATH, PhaseModel, load_model_cached
from inference.preprocessing import Scaler, model_input
from inference.results import CountedSet, CountingError, CountResult

#: Exercises that are always counted by their cycles, even if a model had phases for them.
PEAK_EXERCISES = frozenset({"jump_rope"})


def get_default_model() -> PhaseModel:
    """The shipped default model, loaded once per process."""
    return load_model_cached(DEFAULT_MODEL_PATH)


def _on_grid(recording: Recording, model: PhaseModel) -> tuple[float, np.ndarray]:
    """``(rate_hz, x)``: the model's input channels on its grid, unscaled, shape (m, c)."""
    meta = model.metadata
    rate = float(meta["sample_rate_hz"])
    _, x = model_input(
        recording,
        model.channels,
        rate,
        angle_encoding=meta.get("angle_encoding", "raw"),
        derived=model.derived_channels,
    )
    return rate, x


def _probabilities(model: PhaseModel, x: np.ndarray) -> np.ndarray:
    """(m, n_labels) phase probabilities of unscaled grid samples ``x`` (m, c)."""
    return model.phase_probabilities(Scaler.from_dict(model.metadata["scaling"]).transform(x))


def classify(recording: Recording, model: PhaseModel) -> tuple[float, np.ndarray]:
    """Phase probabilities for every sample on the model's grid.

    Returns ``(rate_hz, probs)`` with probs float32, shape (m, n_labels), where sample
    ``i`` is at ``i / rate_hz`` seconds from the recording's first sample.

    Raises:
        RecordingError: the recording lacks a channel the model needs.
    """
    rate, x = _on_grid(recording, model)
    return rate, _probabilities(model, x)


def count_with_classifier(recording: Recording, model: PhaseModel) -> tuple[CountedSet, ...]:
    """Sets counted by the phase classifier and the state machine (see :mod:`inference.counting`),
    each extended by its repeated cycles (:mod:`inference.cycles`) where the model's counting
    parameters ask for it."""
    rate, x = _on_grid(recording, model)
    params = CountingParams.from_dict(model.metadata["counting"])
    gravity = gravity_columns(x, model.channels)
    return count_probabilities(_probabilities(model, x), model.labels, rate, params, gravity)[1]


def choose_method(recording: Recording, model: PhaseModel | None, exercise: str | None) -> str:
    """``classifier`` or ``peaks`` for this recording and hint (see the module docstring)."""
    if exercise in PEAK_EXERCISES:
        return "peaks"
    if model is None or not recording.has_channels(model.channels):
        return "peaks"
    if exercise and exercise != "unknown" and exercise not in model.exercises:
        return "peaks"
    return "classifier"


def count_recording(recording: Recording, *, model: PhaseModel | None, exercise: str | None = None) -> CountResult:
    """Count the repetitions of one recording.

    Args:
        recording: the parsed upload.
        model: the active phase model (None: peaks only).
        exercise: the user's hint (``burpee``, ``jump_rope``, ...) or None.

    Returns:
        CountResult with sets in time order; ``model_version`` is set when the classifier counted.

    Raises:
        CountingError: no method can count this recording (e.g. no motion channels).
    """
    method = choose_method(recording, model, exercise)
    if method == "classifier":
        return CountResult(sets=count_with_classifier(recording, model), model_version=model.version)
    try:
        from inference.peaks import count_peaks
    except ImportError as exc:  # pragma: no cover - the peak counter ships with the package
        raise CountingError("the peak counter is not available") from exc
    return CountResult(sets=count_peaks(recording, exercise=exercise or "unknown"), model_version=None)
