from dataclasses import replace

import numpy as np
import pytest

from inference.counting import CountingParams
from inference.lab.distill import (
    DISTILLED,
    SHIP_CRITERIA,
    choose_variant,
    fit_student,
    markdown,
    meets,
    soft_targets,
)
from inference.lab.train import Hyperparameters, build_spec, fit
from inference.model import PhaseModel
from inference.preprocessing import Scaler
from inference.scoring import predict_labelled
from tests.inference.lab.test_train import synthetic_prepared


def test_soft_targets_mix_the_true_phase_and_the_teacher():
    y = np.array([0, 2, 1])
    teacher = np.array([[0.5, 0.25, 0.25], [0.0, 0.2, 0.8], [1.0, 0.0, 0.0]], np.float32)
    out = soft_targets(y, teacher, alpha=0.75)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out[0], [0.875, 0.0625, 0.0625])
    np.testing.assert_allclose(out[2], [0.25, 0.75, 0.0])
    np.testing.assert_allclose(soft_targets(y, teacher, alpha=0.0), teacher)
    with pytest.raises(ValueError, match="alpha"):
        soft_targets(y, teacher, alpha=1.5)
    with pytest.raises(ValueError, match="do not match"):
        soft_targets(y[:2], teacher, alpha=0.5)


def test_a_student_learns_what_its_teacher_says_not_only_the_labels():
    """With all weight on the teacher, a student trained on labels the teacher contradicts
    follows the teacher: the soft targets reach the loss."""
    hp = replace(Hyperparameters(), window=64, epochs=3, augment_copies=0, ensemble=1, teacher_weight=1.0)
    train = [synthetic_prepared(), synthetic_prepared(subject="2")]
    network, scaler, params = fit(train, hp)
    spec = build_spec(hp, scaler=scaler, params=params, version="t")

    class Contrary:
        """A teacher that always says "break" (index 0)."""

        spec = None

        @staticmethod
        def phase_probabilities(x):
            out = np.zeros((len(x), len(hp.labels)), np.float32)
            out[:, 0] = 1.0
            return out

    student = fit_student(train, scaler, Contrary(), hp)
    model = PhaseModel(network=student, spec=spec, checksum="")
    probs = predict_labelled(model, train[0], scaler)
    assert probs.shape == (len(train[0].y), len(hp.labels))
    moving = train[0].y != 0
    # Trained on the labels alone the network tells the halves from break; the student does not.
    labelled = predict_labelled(PhaseModel(network=network, spec=spec, checksum=""), train[0], scaler)
    assert (labelled[moving].argmax(axis=1) != 0).mean() > (probs[moving].argmax(axis=1) != 0).mean()
    assert (probs.argmax(axis=1) == 0).mean() > 0.9


def test_the_window_architecture_is_refused():
    hp = replace(Hyperparameters(), architecture="window", window=40)
    with pytest.raises(ValueError, match="sequence"):
        fit_student([], None, None, hp)


def _overall(exact, within, phantom=0):
    return {
        "sets": 161, "sets_exact": exact, "sets_within_1": within, "count_mae": 0.1, "phantom_reps": phantom,
        "frame_accuracy_4": 0.95, "frame_accuracy_7": 0.9,
    }  # fmt: skip


def _report(**variants):
    return {
        "hyperparameters": {"ensemble": 10},
        "sizes": [1, 3, 10],
        "variants": {name: {"overall": o, "folds": {}} for name, o in variants.items()},
    }


def test_the_distilled_network_ships_only_within_one_set_of_the_ensemble():
    assert SHIP_CRITERIA == {"sets_exact": 0.975, "sets_within_1": 0.988, "phantom_reps": 0}
    good, short = _overall(0.98, 0.994), _overall(0.96, 0.994)
    base = {"ensemble-1": short, "ensemble-10": good}
    assert choose_variant(_report(**base, **{"ensemble-3": good, DISTILLED: good})) == DISTILLED
    assert choose_variant(_report(**base, **{"ensemble-3": good, DISTILLED: short})) == "ensemble-3"
    phantom = _overall(0.99, 0.995, phantom=1)
    assert not meets(phantom)
    assert choose_variant(_report(**base, **{"ensemble-3": phantom, DISTILLED: phantom})) == "ensemble-10"
    table = markdown(_report(**base, **{"ensemble-3": good, DISTILLED: short}))
    assert "| single network, no teacher | 1 | 161 | 96.0% |" in table
    assert "| distilled from 10 | 1 |" in table


def test_counting_params_survive_in_the_spec_of_a_distilled_network():
    hp = replace(Hyperparameters(), ensemble=1, teacher_ensemble=10)
    spec = build_spec(hp, scaler=Scaler(mean=(0.0,) * 13, std=(1.0,) * 13), params=CountingParams())
    assert "-distilled-" in spec.version
    assert spec.hyperparameters["teacher_ensemble"] == 10
