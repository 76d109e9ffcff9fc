"""Leave-one-subject-out (LOSO) evaluation on the Exermote recordings.

For each athlete: train on the others, count the held-out athlete's sessions, and
compare with the labels. Figures per fold and overall:

- frame accuracy over 7 phases and over 4 classes (break / burpee / squat / sit_up);
- per true set: exact count, within +-1, absolute error; missed sets (0 counted);
- phantom repetitions: counted repetitions whose centre lies in rest between sets,
  per hour of rest.

A predicted repetition belongs to a true set when its centre lies inside the set's
time span widened by ``SET_TOLERANCE_S``. The one counting parameter not learned from
labels, the break weight, is chosen for each fold on the other folds' held-out
probabilities (:func:`score_heldout`).
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np

from inference.counting import CountingParams
from inference.lab.self_training import SelfTraining, self_train
from inference.lab.train import (
    DEFAULT_DATA_DIR,
    Hyperparameters,
    build_spec,
    fit,
    learn_counting_params,
    load_exermote,
    prepare,
)
from inference.model import PhaseModel
from inference.preprocessing import windows
from inference.scoring import (
    BOUNDARY_S,
    Labelled,
    predict_labelled,
    score_fold,
    score_sets,
    summarise,
    true_sets,
)

log = logging.getLogger(__name__)


def evaluate_fold(model: PhaseModel, test: list[Labelled], scaler, params: CountingParams) -> dict:
    """Score one trained model on held-out prepared recordings (:func:`score_fold`)."""
    spec = model.spec
    probabilities = [predict_labelled(model, p, scaler) for p in test]
    return score_fold(test, probabilities, spec.labels, spec.sample_rate_hz, params=params, channels=spec.channels)


def combine_folds(folds: dict[str, dict]) -> dict:
    """Overall figures of per-fold ``score_fold`` results (pooled, not averaged)."""
    c7 = sum(np.asarray(f["confusion_7"]) for f in folds.values())
    c4 = sum(np.asarray(f["confusion_4"]) for f in folds.values())
    errors4 = [np.sum(f["confusion_4"]) - np.trace(f["confusion_4"]) for f in folds.values()]
    near4 = sum(f["frame_errors_4_near_boundary"] * e for f, e in zip(folds.values(), errors4, strict=True))
    overall = summarise(
        [r for f in folds.values() for r in f["set_rows"]],
        phantom=sum(f["phantom_reps"] for f in folds.values()),
        rest_s=sum(f["rest_hours"] * 3600 for f in folds.values()),
        correct7=int(np.trace(c7)),
        correct4=int(np.trace(c4)),
        frames=int(c7.sum()),
    )
    overall["frame_errors_4_near_boundary"] = float(near4 / max(sum(errors4), 1))
    return overall


def by_subject(prepared: list[Labelled]) -> dict[str, list[Labelled]]:
    """Recordings per athlete, athletes sorted: the LOSO folds and their held-out order."""
    return {s: [p for p in prepared if p.subject == s] for s in sorted({p.subject for p in prepared})}


def loso(
    data_dir: Path = DEFAULT_DATA_DIR,
    hp: Hyperparameters | None = None,
    *,
    verbose: int = 0,
    keep: list | None = None,
    self_training: SelfTraining | None = None,
) -> dict:
    """Leave-one-subject-out over the athletes in ``data_dir``. Returns the report dict.

    Every fold's network is trained first; the folds are then counted by
    :func:`score_heldout`, which picks each fold's break weight on the other folds.
    ``keep``, when given, receives ``(prepared, probabilities, counting_params)`` for every
    held-out recording, with the break weight its fold was counted with.
    With ``self_training`` (rounds > 0) each fold's networks are then adapted to the held-out
    recordings without their labels (:func:`inference.lab.self_training.self_train`, pseudo-labels
    decoded with the fold's break weight) and every fold is counted again; the report's
    ``self_training`` gives the settings and the overall figures before adapting.
    """
    hp = hp or Hyperparameters()
    adapting = self_training is not None and self_training.rounds > 0
    recordings = load_exermote(data_dir)
    prepared = [prepare(r, hp) for r in recordings]
    heldout, fitted = {}, {}
    for subject, test_set in by_subject(prepared).items():
        train_set = [p for p in prepared if p.subject != subject]
        network, scaler, params = fit(train_set, hp, verbose=verbose)
        spec = build_spec(hp, scaler=scaler, params=params, version=f"loso-fold-{subject}")
        model = PhaseModel(network=network, spec=spec, checksum="")
        heldout[subject] = (test_set, [predict_labelled(model, p, scaler) for p in test_set], params)
        if adapting:
            fitted[subject] = (model, scaler, train_set)
    folds, overall = score_heldout(heldout, hp, hp.break_weights)
    extra = {}
    if adapting:
        before = {k: v for k, v in overall.items() if not isinstance(v, list)}
        for subject, (test_set, _, params) in heldout.items():
            model, scaler, train_set = fitted[subject]
            labelling = replace(params, break_weight=folds[subject]["break_weight"])
            adapted = self_train(model, scaler, labelling, test=test_set, train=train_set, hp=hp, config=self_training)
            heldout[subject] = (test_set, adapted, params)
        folds, overall = score_heldout(heldout, hp, hp.break_weights)
        extra = {"self_training": {**asdict(self_training), "before": before}}
    for subject, (test_set, probabilities, params) in heldout.items():
        if keep is not None:
            weighted = replace(params, break_weight=folds[subject]["break_weight"])
            keep += [(p, probs, weighted) for p, probs in zip(test_set, probabilities, strict=True)]
        figures = {k: v for k, v in folds[subject].items() if not isinstance(v, list)}
        log.info("fold %s: %s", subject, json.dumps(figures))
    return {"method": "loso", "hyperparameters": hp.to_dict(), "folds": folds, "overall": overall, **extra}


def count_errors(fold: dict) -> tuple[int, int]:
    """``(count errors, 4-class frame errors)`` of a :func:`score_fold` result; count errors
    are ``|counted - true|`` summed over its sets plus its phantom repetitions."""
    counts = sum(abs(r["pred"] - r["true"]) for r in fold["set_rows"]) + fold["phantom_reps"]
    return int(counts), int(np.sum(fold["confusion_4"]) - np.trace(fold["confusion_4"]))


def choose_break_weight(scored: dict[float, list[dict]]) -> float:
    """The break weight whose folds have the fewest count errors, then the fewest 4-class
    frame errors, then the one nearest 1 (:func:`count_errors`, pooled over the folds).

    Args:
        scored: per candidate weight, :func:`score_fold` results of the folds to choose on.
    """

    def cost(weight: float) -> tuple[int, int, float]:
        totals = [count_errors(f) for f in scored[weight]]
        return sum(t[0] for t in totals), sum(t[1] for t in totals), abs(weight - 1.0)

    return min(scored, key=cost)


def score_heldout(
    heldout: dict[str, tuple[list[Labelled], list[np.ndarray], CountingParams]],
    hp: Hyperparameters,
    break_weights: tuple[float, ...] = (),
) -> tuple[dict[str, dict], dict]:
    """Count every fold's held-out probabilities; each fold's break weight is chosen on the others.

    The held-out athlete's labels never choose its own weight: fold ``s`` is counted with
    the weight that :func:`choose_break_weight` finds best on the other folds' held-out
    probabilities (out-of-fold calibration of a decision threshold).

    Args:
        heldout: per held-out athlete, its prepared recordings, their (m, len(hp.labels))
            phase probabilities and the counting parameters learned on its training athletes.
        hp: gives the labels, sample rate and channels.
        break_weights: the candidates; ``()`` counts with 1.

    Returns:
        ``(folds, overall)``: per athlete the :func:`score_fold` result with its
        ``break_weight``, and :func:`combine_folds` of them with ``break_weight``, the
        weight best on all folds (what a model trained on every athlete ships with).
    """
    weights = tuple(break_weights) or (1.0,)
    scored = {
        subject: {
            w: score_fold(
                test, probabilities, hp.labels, hp.sample_rate_hz,
                params=replace(params, break_weight=w), channels=hp.channels,
            )
            for w in weights
        }
        for subject, (test, probabilities, params) in heldout.items()
    }  # fmt: skip
    folds = {}
    for subject, by_weight in scored.items():
        others = [s for s in scored if s != subject]
        w = choose_break_weight({w: [scored[s][w] for s in others] for w in weights})
        folds[subject] = {**by_weight[w], "break_weight": w, "sessions": len(heldout[subject][0])}
    overall = combine_folds(folds)
    overall["break_weight"] = choose_break_weight({w: [scored[s][w] for s in scored] for w in weights})
    return folds, overall


def save_heldout(path: Path, report: dict, kept: list) -> None:
    """Write LOSO held-out phase probabilities, to count them again without training.

    Args:
        path: ``.npz`` file to write (its folder is created).
        report: the :func:`loso` report; its hyperparameters say how :func:`rescore`
            prepares the recordings again.
        kept: ``(prepared, probabilities (m, n_labels), counting_params)`` per held-out
            recording, in the order :func:`loso` fills its ``keep``.
    """
    arrays, recordings = {}, []
    for i, (p, probabilities, params) in enumerate(kept):
        arrays[f"probabilities_{i}"] = probabilities
        arrays[f"y_{i}"] = p.y
        recordings.append({"subject": p.subject, "counting": params.to_dict()})
    meta = {"hyperparameters": report["hyperparameters"], "recordings": recordings}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)


def rescore(path: Path, data_dir: Path = DEFAULT_DATA_DIR, *, counting: dict | None = None) -> dict:
    """Count saved held-out probabilities (:func:`save_heldout`) again with the current code.

    A change to counting is then measured on the LOSO folds in seconds, with the same
    networks, instead of training every fold again.

    Args:
        path: ``.npz`` written by :func:`save_heldout`.
        data_dir: the Exermote recordings the probabilities were computed on.
        counting: counting parameters to override in every fold, e.g. ``{"cycle_match": 0.0}``.
            Without ``break_weight`` each fold's weight is chosen again on the other folds
            (:func:`score_heldout`) from the saved hyperparameters' candidates.

    Returns:
        A report shaped like :func:`loso`'s, ``method`` ``loso-rescored``.

    Raises:
        OSError: ``path`` cannot be read.
        ValueError: ``path`` is not such a file, ``data_dir`` does not hold the recordings
            whose labels were saved, or ``counting`` names a field that is not a counting
            parameter.
    """
    try:
        with np.load(path) as saved:
            meta = json.loads(str(saved["meta"]))
            n = len(meta["recordings"])
            probabilities = [saved[f"probabilities_{i}"] for i in range(n)]
            saved_y = [saved[f"y_{i}"] for i in range(n)]
        hp = Hyperparameters.from_dict(meta["hyperparameters"])
    except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} was not written by --save-probabilities of this version ({exc})") from exc
    prepared = [prepare(r, hp) for r in load_exermote(data_dir)]
    ordered = [p for test in by_subject(prepared).values() for p in test]
    if len(ordered) != n or not all(np.array_equal(p.y, y) for p, y in zip(ordered, saved_y, strict=True)):
        raise ValueError(f"{data_dir} does not hold the labelled recordings whose probabilities {path} saved")
    unknown = set(counting or {}) - {f.name for f in fields(CountingParams)}
    if unknown:
        raise ValueError(f"not counting parameters: {', '.join(sorted(unknown))}")
    overrides = dict(counting or {})
    weights = (overrides.pop("break_weight"),) if "break_weight" in overrides else hp.break_weights
    heldout = {}
    for subject in dict.fromkeys(r["subject"] for r in meta["recordings"]):
        idx = [i for i, r in enumerate(meta["recordings"]) if r["subject"] == subject]
        params = replace(CountingParams.from_dict(meta["recordings"][idx[0]]["counting"]), **overrides)
        heldout[subject] = ([ordered[i] for i in idx], [probabilities[i] for i in idx], params)
    folds, overall = score_heldout(heldout, hp, weights)
    return {
        "method": "loso-rescored",
        "hyperparameters": hp.to_dict(),
        "counting": counting or {},
        "folds": folds,
        "overall": overall,
    }


def headline(report: dict) -> dict:
    """The figures stored in model metadata and printed by the CLI."""
    keys = (
        "frame_accuracy_7", "frame_accuracy_4", "sets", "sets_exact", "sets_within_1", "count_mae",
        "missed_sets", "phantom_reps", "rest_hours", "phantom_reps_per_rest_hour", "frame_errors_4_near_boundary",
        "break_weight",
    )  # fmt: skip
    pick = lambda d: {k: d[k] for k in keys if k in d}  # noqa: E731
    return {
        "method": "leave-one-subject-out",
        "overall": pick(report["overall"]),
        "folds": {s: pick(f) for s, f in report["folds"].items()},
    }


def markdown(report: dict) -> str:
    """Per-fold Markdown table of the headline figures."""
    lines = [
        "| held-out athlete | 7-phase frame acc. | 4-class frame acc. | sets | exact | +-1 | MAE | missed "
        "| phantom reps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    items = [*report["folds"].items(), ("all", report["overall"])]
    pct = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
    for name, f in items:
        lines.append(
            f"| {name} | {pct(f['frame_accuracy_7'])} | {pct(f['frame_accuracy_4'])} | {f['sets']} | "
            f"{f['sets_exact']:.1%} | {f['sets_within_1']:.1%} | {f['count_mae']:.2f} | {f['missed_sets']} | "
            f"{f['phantom_reps']} ({f['phantom_reps_per_rest_hour']:.1f}/h rest) |"
        )
    if "break_weight" in report["overall"]:
        chosen = ", ".join(f"athlete {name} x{f['break_weight']:g}" for name, f in report["folds"].items())
        lines.append(
            f"\nBreak weight per held-out athlete: {chosen}; for a model trained on every athlete: "
            f"x{report['overall']['break_weight']:g}."
        )
    adapted = report.get("self_training")
    if adapted:
        b = adapted["before"]
        lines.append(
            f"\nSelf-trained on each held-out athlete ({adapted['rounds']} round{'s' * (adapted['rounds'] != 1)}, "
            f"scope {adapted['scope']}, "
            f"{'with' if adapted['anchored'] else 'without'} the training athletes); before: 4-class "
            f"{pct(b['frame_accuracy_4'])}, exact {b['sets_exact']:.1%}, +-1 {b['sets_within_1']:.1%}, "
            f"{b['phantom_reps']} phantom reps."
        )
    near = report["overall"].get("frame_errors_4_near_boundary")
    if near is not None:
        lines.append(
            f"\n{near:.0%} of the 4-class frame errors lie within {BOUNDARY_S} s of a true change of class "
            "(timing against the cues, not a wrong exercise)."
        )
    return "\n".join(lines)


def loso_baseline(data_dir: Path = DEFAULT_DATA_DIR, *, epochs: int = 20, seed: int = 0) -> dict:
    """The original app's method (:mod:`inference.lab.baseline`) on the same LOSO folds."""
    from inference.lab.baseline import BASELINE_HP, count_consecutive, fit_baseline, to_four_class

    hp = BASELINE_HP
    prepared = [prepare(r, hp) for r in load_exermote(data_dir)]
    rate = hp.sample_rate_hz
    folds, all_rows, totals = {}, [], {"phantom": 0, "rest_s": 0.0, "c4": 0, "frames": 0}
    for subject in sorted({p.subject for p in prepared}):
        train_set = [p for p in prepared if p.subject != subject]
        network, scaler = fit_baseline(train_set, epochs=epochs, seed=seed)
        params = learn_counting_params_for(train_set, rate)
        rows, phantom, rest_s, c4, frames = [], 0, 0.0, 0, 0
        for p in (p for p in prepared if p.subject == subject):
            x = windows(scaler.transform(p.x), hp.window, hp.label_offset)
            pred = network.predict(x, batch_size=2048, verbose=0).argmax(axis=1)
            truth4 = to_four_class(p.y, hp.labels)
            c4 += int((pred == truth4).sum())
            frames += len(pred)
            sets = count_consecutive(pred, rate, params.set_gap_s)
            scored = score_sets(sets, true_sets(p.labels, p.set_break, rate), p.set_break, rate)
            rows += scored["sets"]
            phantom += scored["phantom_reps"]
            rest_s += scored["rest_s"]
        fold = summarise(rows, phantom=phantom, rest_s=rest_s, correct7=0, correct4=c4, frames=frames)
        fold["frame_accuracy_7"] = None
        fold["set_rows"] = rows
        folds[subject] = fold
        all_rows += rows
        for key, value in (("phantom", phantom), ("rest_s", rest_s), ("c4", c4), ("frames", frames)):
            totals[key] += value
    overall = summarise(
        all_rows,
        phantom=totals["phantom"],
        rest_s=totals["rest_s"],
        correct7=0,
        correct4=totals["c4"],
        frames=totals["frames"],
    )
    overall["frame_accuracy_7"] = None
    return {"method": "loso-baseline", "epochs": epochs, "folds": folds, "overall": overall}


def learn_counting_params_for(prepared: list[Labelled], rate_hz: float) -> CountingParams:
    return learn_counting_params([p.labels for p in prepared], [p.set_break for p in prepared], rate_hz)
