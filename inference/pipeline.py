"""Recording + model -> CountResult: what workers and the CLI call.

Method choice (architecture.md, "Data flow"):

- the classifier (CNN-LSTM phases + state machine) when the recording has the model's
  channels and the user's exercise hint is absent or names an exercise the model knows;
- the generic counter (:mod:`inference.generic`; :mod:`inference.peaks` for the hints in
  ``PEAK_COUNTER_HINTS``; both count peaks, method ``peaks``) when the hint is ``jump_rope``, names an
  exercise the model has no phases for, or the recording lacks the model's channels;
- in place of :mod:`inference.generic`, the learned counter (:mod:`inference.density`, method
  ``learned``) where one is given and the recording has three accelerometer axes, as the
  counter's routing says for the hint's group (chosen on held-out folds, with and without an
  exemplar): its density alone, or its density counted inside the generic counter's sets.
"""

from __future__ import annotations

import numpy as np

from inference.catalog import GENERIC_ONLY, counting_method
from inference.counting import count_probabilities
from inference.cycles import gravity_columns
from inference.density import DensityCounter, Exemplar
from inference.density import can_count as can_count_learned
from inference.io import Recording
from inference.model import DEFAULT_MODEL_PATH, PhaseModel, load_model_cached
from inference.preprocessing import model_input
from inference.results import CountedSet, CountingError, CountResult
from inference.spec import ModelSpec

#: Exercises that are always counted by their cycles, even if a model had phases for them.
PEAK_EXERCISES = GENERIC_ONLY
#: Hints the tuned peak counter (:mod:`inference.peaks`) counts better than the generic one
#: (docs/accuracy.md, issue 20); with all three axes of a sensor, else the generic counter.
PEAK_COUNTER_HINTS = frozenset({"jump_rope", "jumping_jack"})


def get_default_model() -> PhaseModel:
    """The shipped default model, loaded once per process."""
    return load_model_cached(DEFAULT_MODEL_PATH)


def _on_grid(recording: Recording, spec: ModelSpec) -> np.ndarray:
    """The model's input channels on its grid, unscaled, shape (m, c)."""
    _, x = model_input(
        recording,
        spec.channels,
        spec.sample_rate_hz,
        angle_encoding=spec.angle_encoding,
        derived=spec.derived_channels,
    )
    return x


def classify(recording: Recording, model: PhaseModel) -> tuple[float, np.ndarray]:
    """Phase probabilities for every sample on the model's grid.

    Returns ``(rate_hz, probs)`` with probs float32, shape (m, n_labels), where sample
    ``i`` is at ``i / rate_hz`` seconds from the recording's first sample.

    Raises:
        RecordingError: the recording lacks a channel the model needs.
    """
    spec = model.spec
    return spec.sample_rate_hz, model.phase_probabilities(spec.scaling.transform(_on_grid(recording, spec)))


def count_with_classifier(recording: Recording, model: PhaseModel) -> tuple[CountedSet, ...]:
    """Sets counted by the phase classifier and the state machine (see :mod:`inference.counting`),
    each extended by its repeated cycles (:mod:`inference.cycles`) where the model's counting
    parameters ask for it."""
    spec = model.spec
    x = _on_grid(recording, spec)
    probs = model.phase_probabilities(spec.scaling.transform(x))
    gravity = gravity_columns(x, spec.channels)
    return count_probabilities(probs, spec.labels, spec.sample_rate_hz, spec.counting, gravity)[1]


def choose_method(recording: Recording, spec: ModelSpec | None, exercise: str | None) -> str:
    """``classifier`` or ``peaks`` for this recording and hint (see the module docstring).

    Takes the model's spec, not the model: a web process answers it without loading a network.
    """
    if spec is None or not recording.has_channels(spec.channels):
        return "peaks"
    # The exercise's method is the catalog's (the same answer as GET /api/v1/exercises/).
    return "classifier" if counting_method(exercise, spec) == "classifier" else "peaks"


def check_countable(recording: Recording, spec: ModelSpec | None, exercise: str | None) -> str:
    """The method that will count ``recording`` (:func:`choose_method`), once it is known to be able to.

    What the upload checks before anything is stored, with the production model's spec.

    Raises:
        CountingError: the peak counter would count it and it has neither an accelerometer nor a
            gyroscope, or the window classifier would and it is shorter than one window.
    """
    from inference.generic import can_count

    method = choose_method(recording, spec, exercise)
    if method == "peaks" and not can_count(recording.channels):
        raise CountingError(
            "the recording lacks the channels needed to count repetitions: an accelerometer (acc_x/y/z or "
            "user_acc_x/y/z) or a gyroscope (gyro_x/y/z); it has " + ", ".join(recording.channels)
        )
    if method == "classifier" and recording.duration_s < spec.min_duration_s:
        raise CountingError(
            f"the recording lasts {recording.duration_s:.2f} s; the classifier needs at least "
            f"{spec.min_duration_s:.1f} s (one window of {spec.window} samples at {spec.sample_rate_hz:g} Hz)"
        )
    return method


def count_recording(
    recording: Recording,
    *,
    model: PhaseModel | None,
    exercise: str | None = None,
    counter: DensityCounter | None = None,
    exemplar: Exemplar | None = None,
) -> CountResult:
    """Count the repetitions of one recording.

    Args:
        recording: the parsed upload.
        model: the active phase model (None: peaks only).
        exercise: the user's hint (``burpee``, ``jump_rope``, ...) or None.
        counter: the active learned counter (None: :mod:`inference.generic` for every exercise
            the classifier and the peak counter do not count).
        exemplar: a stretch with a known count of the movement; used by the learned counter
            only (the sets it counts say ``used_exemplar``).

    Returns:
        CountResult with sets in time order; ``model_version`` is the classifier's or the learned
        counter's version, whichever counted (None for the peak counters).

    Raises:
        CountingError: no method can count this recording (e.g. no motion channels), or the
            exemplar has no three-axis accelerometer.
    """
    spec = None if model is None else model.spec
    if choose_method(recording, spec, exercise) == "classifier":
        return CountResult(sets=count_with_classifier(recording, model), model_version=model.spec.version)
    from inference.generic import count_generic
    from inference.peaks import count_peaks

    hint = exercise or "unknown"
    if _peak_counted(recording, hint):
        return CountResult(sets=count_peaks(recording, exercise=hint), model_version=None)
    route = _route(recording, hint, counter, with_exemplar=exemplar is not None)
    if route == "learned":
        return CountResult(
            sets=counter.count(recording, exercise=hint, exemplar=exemplar), model_version=counter.spec.version
        )
    sets = count_generic(recording, exercise=hint)
    if route == "hybrid":
        return CountResult(
            sets=counter.count_in_sets(recording, sets, exemplar=exemplar), model_version=counter.spec.version
        )
    return CountResult(sets=sets, model_version=None)


def uses_learned_counter(
    recording: Recording,
    spec: ModelSpec | None,
    exercise: str | None,
    counter: DensityCounter | None,
    *,
    with_exemplar: bool,
) -> bool:
    """Whether :func:`count_recording` would count ``recording`` with the learned ``counter``
    (given a model with ``spec``), so that an exemplar would be used: what a worker asks before
    it reads an exemplar's recording. Takes the spec, not the model (no network loaded)."""
    if counter is None or choose_method(recording, spec, exercise) == "classifier":
        return False
    hint = exercise or "unknown"
    if _peak_counted(recording, hint):
        return False
    return _route(recording, hint, counter, with_exemplar=with_exemplar) != "generic"


def _peak_counted(recording: Recording, hint: str) -> bool:
    from inference.peaks import can_count_peaks

    return hint in PEAK_COUNTER_HINTS and can_count_peaks(recording.channels)


def _route(recording: Recording, hint: str, counter: DensityCounter | None, *, with_exemplar: bool) -> str:
    """``learned``, ``hybrid`` or ``generic`` (:meth:`inference.density.CounterSpec.route`)."""
    if counter is None or not can_count_learned(recording.channels):
        return "generic"
    return counter.spec.route(hint, with_exemplar=with_exemplar)
