"""Test-time self-training on a held-out athlete (an evaluation option; the worker does not use it).

Each round the fold's networks label the held-out recordings themselves (the decoded phases
with the fold's break weight are the pseudo-labels), every member is fine-tuned on them for a
few epochs at a low learning rate, and the recordings are predicted again. This adapts the
networks to an athlete without labels (self-training / pseudo-labelling, Lee, ICML 2013
workshop; for HAR across subjects, e.g. Tang et al., "SelfHAR", IMWUT 2021).

Scopes: ``athlete`` adapts on all of the held-out athlete's sessions together, ``session``
on each session alone, starting again from the trained networks (what a worker could do
per upload). ``anchored`` adds the labelled training athletes to every fine-tuning set,
which keeps the networks from drifting towards their own lean; a deployed worker would need
the training recordings for that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.counting import CountingParams, count_probabilities
from inference.cycles import gravity_columns
from inference.lab.train import (
    Hyperparameters,
    Labelled,
    augment,
    class_weights,
    sequence_crops,
    train_network,
)
from inference.model import PhaseModel
from inference.preprocessing import Scaler, derive_channels
from inference.scoring import predict_labelled

SCOPES = ("athlete", "session")


@dataclass(frozen=True)
class SelfTraining:
    """How to self-train; ``rounds`` 0 is off.

    Raises ValueError on a negative round count, an unknown scope or a learning rate or
    epoch count that is not positive.
    """

    rounds: int = 1
    scope: str = "athlete"
    anchored: bool = True
    epochs: int = 3
    learning_rate: float = 5e-4

    def __post_init__(self) -> None:
        if self.rounds < 0:
            raise ValueError(f"self-training rounds must be >= 0, not {self.rounds}")
        if self.scope not in SCOPES:
            raise ValueError(f"self-training scope must be one of {', '.join(SCOPES)}, not {self.scope!r}")
        if self.epochs < 1 or not self.learning_rate > 0:
            raise ValueError("self-training epochs and learning rate must be positive")


def members_of(network) -> list:
    """The member networks of an :func:`inference.lab.train.average_networks` ensemble
    (sharing its weights), or ``[network]`` for a single network."""
    members = [layer for layer in network.layers if hasattr(layer, "layers")]
    return members or [network]


def pseudo_labels(
    model: PhaseModel, p: Labelled, scaler: Scaler, params: CountingParams, hp: Hyperparameters
) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities (m, n_labels), phases (m,))`` of a recording: the model's phase
    probabilities and the phases counting decodes from them (added repetitions included)."""
    probabilities = predict_labelled(model, p, scaler)
    gravity = gravity_columns(p.x, hp.channels)
    phases, _ = count_probabilities(probabilities, hp.labels, hp.sample_rate_hz, params, gravity)
    return probabilities, phases


def fine_tune(
    member,
    recordings: list[tuple[np.ndarray, np.ndarray]],
    scaler: Scaler,
    hp: Hyperparameters,
    *,
    weights: np.ndarray,
    config: SelfTraining,
    seed: int,
) -> None:
    """Train one member further, in place, on ``(x (m, c) unscaled channels, y (m,) phase
    indices)`` pairs, each with ``hp.augment_copies`` augmented copies as in training, the
    loss weighted by ``weights`` (n_labels,) per phase, over a cosine-decayed learning rate."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for x0, y in recordings:
        for copy in range(hp.augment_copies + 1):
            x = augment(x0, hp.channels, rng, hp) if copy else x0
            xs.append(sequence_crops(scaler.transform(derive_channels(x, hp.channels, hp.derived_channels)), hp.window))
            ys.append(sequence_crops(y, hp.window))
    train_network(
        member, np.concatenate(xs), np.concatenate(ys), weights, epochs=config.epochs,
        learning_rate=config.learning_rate, batch_size=max(1, hp.batch_size // 4),
    )  # fmt: skip


def self_train(
    model: PhaseModel,
    scaler: Scaler,
    params: CountingParams,
    *,
    test: list[Labelled],
    train: list[Labelled],
    hp: Hyperparameters,
    config: SelfTraining,
) -> list[np.ndarray]:
    """Adapt a fold's networks to its held-out recordings; returns their phase probabilities.

    Args:
        model: the fold's (ensemble) network; fine-tuned in place, its trained weights are
            restored before each group (all of ``test``, or each session) and on return.
        scaler: the fold's input scaling.
        params: counting parameters that decode the pseudo-labels (the fold's break weight).
        test: the held-out athlete's prepared recordings; only their ``x`` is read.
        train: the fold's labelled training recordings (fine-tuned on when anchored; their
            labels give the phase weights either way).
        hp: the fold's hyperparameters (sequence architecture).
        config: rounds, scope, anchoring, epochs and learning rate.

    Returns:
        One (m, n_labels) array per recording of ``test``, in order.

    Raises:
        ValueError: ``hp.architecture`` is not ``sequence`` (the windowed model is not
            fine-tuned here).
    """
    if hp.architecture != "sequence":
        raise ValueError("self-training is implemented for the sequence model only")
    members = members_of(model.network)
    weights = class_weights(np.concatenate([p.y for p in train]), len(hp.labels))
    anchor = [(p.x, p.y) for p in train] if config.anchored else []
    groups = [test] if config.scope == "athlete" else [[p] for p in test]
    # every variable, dropout's seed state too, so a session's outcome does not depend on the one before
    trained = [[v.numpy() for v in m.variables] for m in members]
    out: list[np.ndarray] = []
    for group in groups:
        _restore(members, trained)
        probabilities = []
        for round_ in range(config.rounds + 1):
            labelled = [pseudo_labels(model, p, scaler, params, hp) for p in group]
            probabilities = [probs for probs, _ in labelled]
            if round_ == config.rounds:
                break
            recordings = anchor + [(p.x, phases) for p, (_, phases) in zip(group, labelled, strict=True)]
            for i, member in enumerate(members):
                seed = hp.seed + 1000 * (round_ + 1) + i  # apart from the members' training seeds
                fine_tune(member, recordings, scaler, hp, weights=weights, config=config, seed=seed)
        out += probabilities
    _restore(members, trained)
    return out


def _restore(members: list, values: list[list[np.ndarray]]) -> None:
    for member, saved in zip(members, values, strict=True):
        for variable, value in zip(member.variables, saved, strict=True):
            variable.assign(value)
