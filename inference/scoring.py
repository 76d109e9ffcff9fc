"""Scoring counts against labels: the figures the lab reports and the model registry stores.

Figures, per recording set and pooled (Exermote README, "Labels and ground truth"):

- frame accuracy over the model's phases and over 4 classes (break / burpee / squat / sit_up);
- per true set: exact count, within +-1, absolute error; missed sets (0 counted);
- phantom repetitions: counted repetitions whose centre lies in rest between sets,
  per hour of rest.

A predicted repetition belongs to a true set when its centre lies inside the set's
time span widened by ``SET_TOLERANCE_S``. Leave-one-subject-out evaluation, which
trains the networks it scores, is research code (:mod:`inference.lab.evaluate`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from inference.counting import CountingParams, count_probabilities, runs
from inference.cycles import gravity_columns
from inference.io import Recording
from inference.model import PhaseModel
from inference.preprocessing import Scaler, derive_channels, model_input, phase_labels_on_grid

#: Seconds a true set's span is widened when repetitions are matched to it.
SET_TOLERANCE_S = 1.0
#: A 4-class frame error this close to a true change of class (s) is a timing error.
BOUNDARY_S = 0.5


@dataclass
class Labelled:
    """A labelled recording on the model's grid: x (m, c) unscaled float32 ``channels``
    (derived channels are computed later, after any augmentation), y (m,) label indices,
    labels (m,) phase names, set_break (m,) bool, True in rest between sets."""

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    set_break: np.ndarray
    subject: str | None


def label_recording(
    recording: Recording,
    *,
    channels: tuple[str, ...],
    rate_hz: float,
    labels: tuple[str, ...],
    angle_encoding: str,
) -> Labelled:
    """Put a labelled recording on a model's grid.

    Raises:
        RecordingError: a channel is missing. KeyError: a phase outside ``labels``.
        ValueError: the recording carries no labels.
    """
    if recording.labels is None or "set_break" not in recording.annotations:
        raise ValueError("the recording carries no phase labels")
    grid, x = model_input(recording, channels, rate_hz, angle_encoding=angle_encoding)
    names = phase_labels_on_grid(recording, grid)
    index = {name: i for i, name in enumerate(labels)}
    y = np.array([index[str(n)] for n in names], dtype=np.int64)
    set_break = np.asarray(np.interp(grid, recording.time_s, recording.annotations["set_break"].astype(float)) > 0.5)
    return Labelled(x=x, y=y, labels=names, set_break=set_break, subject=recording.subject)


def predict_labelled(model: PhaseModel, p: Labelled, scaler: Scaler) -> np.ndarray:
    """(m, n_labels) phase probabilities of a labelled recording, scaled with ``scaler``."""
    spec = model.spec
    return model.phase_probabilities(scaler.transform(derive_channels(p.x, spec.channels, spec.derived_channels)))


def errors_near_boundaries(true4: np.ndarray, pred4: np.ndarray, rate_hz: float) -> tuple[int, int]:
    """``(errors, near)``: 4-class frame errors, and those within ``BOUNDARY_S`` of a true
    class change. Shapes (n,), (n,). Labels follow the cues the athletes heard, so a
    movement that starts 0.3 s after its cue shows up as near-boundary errors."""
    wrong = np.flatnonzero(true4 != pred4)
    changes = np.flatnonzero(np.diff(true4) != 0) + 0.5
    if len(wrong) == 0 or len(changes) == 0:
        return len(wrong), 0
    pos = np.clip(np.searchsorted(changes, wrong), 1, len(changes)) - 1
    nearest = np.minimum(np.abs(wrong - changes[pos]), np.abs(wrong - changes[np.minimum(pos + 1, len(changes) - 1)]))
    return len(wrong), int((nearest <= BOUNDARY_S * rate_hz).sum())


def four_class(labels: tuple[str, ...]) -> np.ndarray:
    """Map phase indices to 4-class indices (0 break, 1 burpee, 2 squat, 3 sit_up)."""
    order = {"break": 0, "burpee": 1, "squat": 2, "sit_up": 3}
    return np.array([order[name.split(".")[0]] for name in labels])


def score_sets(pred_sets, truth: list[dict], set_break: np.ndarray, rate_hz: float) -> dict:
    """Compare counted sets with true sets of one recording.

    Returns per-set rows ``{"exercise", "true", "pred", "start_s"}`` plus phantom
    repetitions (centre in rest, outside every widened true set) and rest seconds.
    """
    centres = [((r.start_s + r.end_s) / 2, s.exercise) for s in pred_sets for r in s.repetitions]
    used = np.zeros(len(centres), bool)
    rows = []
    for t in truth:
        lo, hi = t["start_s"] - SET_TOLERANCE_S, t["end_s"] + SET_TOLERANCE_S
        inside = [i for i, (c, _) in enumerate(centres) if lo <= c <= hi and not used[i]]
        used[inside] = True
        rows.append({"exercise": t["exercise"], "true": t["reps"], "pred": len(inside), "start_s": t["start_s"]})
    rest_s = float(set_break.sum() / rate_hz)
    return {"sets": rows, "phantom_reps": int((~used).sum()), "rest_s": rest_s}


def set_count_figures(*, sets: int, exact: int, within_1: int, abs_error: float, missed: int) -> dict:
    """Per-set counting figures from tallies over true sets, as :func:`summarise` defines them.

    Args:
        sets: true sets (a true count of at least one repetition).
        exact / within_1: of those, counted exactly / within +-1 repetition.
        abs_error: the sum of ``|counted - true|`` over them (repetitions).
        missed: of those, counted 0 (or not found at all).

    Returns:
        ``{"sets", "sets_exact", "sets_within_1", "count_mae", "missed_sets"}``; shares and the
        MAE are None without a true set (where ``summarise`` says 0.0 for an empty fold).
    """
    return {
        "sets": sets,
        "sets_exact": exact / sets if sets else None,
        "sets_within_1": within_1 / sets if sets else None,
        "count_mae": abs_error / sets if sets else None,
        "missed_sets": missed,
    }


def summarise(rows: list[dict], *, phantom: int, rest_s: float, correct7: int, correct4: int, frames: int) -> dict:
    """Headline figures from per-set rows, phantom repetitions and frame counts."""
    err = np.array([r["pred"] - r["true"] for r in rows]) if rows else np.zeros(0)
    return {
        "frame_accuracy_7": correct7 / max(frames, 1),
        "frame_accuracy_4": correct4 / max(frames, 1),
        "sets": len(rows),
        "sets_exact": float(np.mean(err == 0)) if rows else 0.0,
        "sets_within_1": float(np.mean(np.abs(err) <= 1)) if rows else 0.0,
        "count_mae": float(np.mean(np.abs(err))) if rows else 0.0,
        "missed_sets": int(sum(1 for r in rows if r["pred"] == 0)),
        "phantom_reps": phantom,
        "rest_hours": rest_s / 3600,
        "phantom_reps_per_rest_hour": phantom / max(rest_s / 3600, 1e-9),
    }


def score_fold(
    test: list[Labelled],
    probabilities: list[np.ndarray],
    labels: tuple[str, ...],
    rate_hz: float,
    *,
    params: CountingParams,
    channels: tuple[str, ...],
) -> dict:
    """Count held-out recordings from their phase probabilities and compare with the labels.

    Args:
        test: prepared recordings (their ``x`` gives the gravity the cycle extension matches).
        probabilities: one (m, len(labels)) array per recording, on the recording's grid.
        labels: phase names, in the probabilities' column order.
        rate_hz: sample rate of the grid.
        params: counting parameters learned on the fold's training athletes.
        channels: the columns of ``x``.

    Returns:
        ``summarise`` figures plus confusion matrices (7-phase and 4-class), the share of
        4-class errors near a true boundary and the per-set rows.
    """
    map4 = four_class(labels)
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    rows, phantom, rest_s, errors4, near4 = [], 0, 0.0, 0, 0
    for p, raw in zip(test, probabilities, strict=True):
        pred, sets = count_probabilities(raw, labels, rate_hz, params, gravity_columns(p.x, channels))
        np.add.at(confusion, (p.y, pred), 1)
        errors, near = errors_near_boundaries(map4[p.y], map4[pred], rate_hz)
        errors4, near4 = errors4 + errors, near4 + near
        scored = score_sets(sets, true_sets(p.labels, p.set_break, rate_hz), p.set_break, rate_hz)
        rows += scored["sets"]
        phantom += scored["phantom_reps"]
        rest_s += scored["rest_s"]
    frames = int(confusion.sum())
    correct7 = int(np.trace(confusion))
    c4 = np.zeros((4, 4), dtype=np.int64)
    np.add.at(c4, (map4[:, None].repeat(k, 1), map4[None, :].repeat(k, 0)), confusion)
    out = summarise(rows, phantom=phantom, rest_s=rest_s, correct7=correct7, correct4=int(np.trace(c4)), frames=frames)
    out["frame_errors_4_near_boundary"] = near4 / max(errors4, 1)
    out["confusion_7"] = confusion.tolist()
    out["confusion_4"] = c4.tolist()
    out["set_rows"] = rows
    return out


def evaluate_model(model: PhaseModel, recordings: list[Recording]) -> dict:
    """Score a trained model on labelled recordings (what the model registry stores).

    Args:
        model: a loaded model; its spec gives preprocessing and counting parameters.
        recordings: labelled recordings (Exermote format).

    Returns:
        ``summarise`` figures (frame accuracy, per-set exact / +-1 / MAE, missed sets,
        phantom repetitions per hour of rest, share of 4-class errors near a boundary)
        plus ``recordings``.

    Raises:
        ValueError: a recording carries no labels.
    """
    spec = model.spec
    if any(r.labels is None for r in recordings):
        raise ValueError("every evaluation recording needs phase labels")
    labelled = [
        label_recording(
            r,
            channels=spec.channels,
            rate_hz=spec.sample_rate_hz,
            labels=spec.labels,
            angle_encoding=spec.angle_encoding,
        )
        for r in recordings
    ]
    probabilities = [predict_labelled(model, p, spec.scaling) for p in labelled]
    fold = score_fold(
        labelled, probabilities, spec.labels, spec.sample_rate_hz, params=spec.counting, channels=spec.channels
    )
    out = {k: v for k, v in fold.items() if k not in ("set_rows", "confusion_7", "confusion_4")}
    out["recordings"] = len(recordings)
    return out


def true_sets(labels: np.ndarray, set_break: np.ndarray, rate_hz: float) -> list[dict]:
    """Ground-truth sets of a labelled recording (Exermote README: "Labels and ground truth").

    A set is a maximal stretch between ``set_break`` samples; its count is the number of
    first-half runs in it. Returns ``[{"exercise", "reps", "start_s", "end_s"}]``.
    """
    out = []
    for is_rest, start, stop in runs(set_break):
        if is_rest:
            continue
        segment = labels[start:stop]
        firsts = [str(v) for v, _, _ in runs(segment) if str(v).endswith(".first_half")]
        if not firsts:
            continue
        exercise = Counter(f.split(".")[0] for f in firsts).most_common(1)[0][0]
        out.append({"exercise": exercise, "reps": len(firsts), "start_s": start / rate_hz, "end_s": stop / rate_hz})
    return out


@dataclass(frozen=True)
class SetTruth:
    """A recording whose true set counts are known without phase labels (users' corrections).

    ``sets``: ``[{"exercise", "reps", "start_s", "end_s"[, "method"]}]`` true sets (``reps`` >= 1),
    seconds from the first sample; ``method``: how the session counted the set (``classifier``,
    ``peaks``, ``manual``, ...), where known. ``unknown``: ``[(start_s, end_s)]`` spans whose truth
    is not known (sets nobody reviewed): repetitions counted there are neither scored nor phantom.
    ``exercise``: the upload's hint (None: none), passed to the counter as the worker does.
    """

    recording: Recording
    sets: list[dict]
    unknown: list[tuple[float, float]]
    exercise: str | None = None


def evaluate_on_sets(model: PhaseModel, items: Iterable[SetTruth]) -> dict:
    """Count recordings with ``model`` as the worker would and score the sets against known counts.

    ``items`` may be an iterator that reads each recording when asked (users' corrections): each
    is counted and dropped before the next is asked for, so memory follows one recording.
    Each recording is counted by :func:`inference.pipeline.count_recording` (the method the
    pipeline chooses), then matched to its true sets by :func:`score_sets` (a repetition
    belongs to a true set when its centre lies in the set's span widened by ``SET_TOLERANCE_S``).

    Returns:
        :func:`set_count_figures` over the true sets, plus ``phantom_reps`` (repetitions whose
        centre lies outside every true and unknown span), ``sets_counted`` (sets the model
        found) and ``recordings``. No frame accuracy: there are no labels.
    """
    from inference.pipeline import count_recording

    def count(item: SetTruth):
        result = count_recording(item.recording, model=model, exercise=item.exercise)
        return result.sets, item.sets, item.unknown

    return _score_on_sets(items, count)


def evaluate_counter_on_sets(
    counter, items: Iterable[SetTruth], *, skip_methods: tuple[str, ...] = ("classifier",)
) -> dict:
    """Count recordings with a learned counter (:class:`inference.density.DensityCounter`) and score
    the sets it is there to count against known counts.

    A true set whose ``method`` (how the session counted it: ``SetTruth.sets[i]["method"]``, when
    given) is in ``skip_methods`` was the classifier's to count, not the counter's: its span is
    treated as unknown (repetitions counted there are neither scored nor phantom). A recording
    without a three-axis accelerometer (:func:`inference.density.can_count`) is skipped, its
    sets unscored. Otherwise as :func:`evaluate_on_sets` (one recording in memory at a time).

    Returns:
        The figures of :func:`evaluate_on_sets`, plus ``recordings_skipped``.
    """
    from inference.density import can_count

    skipped = 0

    def count(item: SetTruth):
        nonlocal skipped
        if not can_count(item.recording.channels):
            skipped += 1
            return None
        mine = [s for s in item.sets if s.get("method") not in skip_methods]
        theirs = [(s["start_s"], s["end_s"]) for s in item.sets if s.get("method") in skip_methods]
        sets = counter.count(item.recording, exercise=item.exercise or "unknown")
        return sets, mine, [*item.unknown, *theirs]

    figures = _score_on_sets(items, count)
    return {**figures, "recordings_skipped": skipped}


def _score_on_sets(items: Iterable[SetTruth], count) -> dict:
    """Score each item's counted sets against its true sets; ``count(item)`` gives
    ``(counted sets, true sets, unknown spans)``, or None to leave the item out."""
    rows: list[dict] = []
    phantom = counted_sets = recordings = 0
    for item in items:
        counted = count(item)
        if counted is None:
            del item
            continue
        pred, truth, unknown_spans = counted
        counted_sets += len(pred)
        unknown = [{"exercise": "", "reps": 0, "start_s": s, "end_s": e} for s, e in unknown_spans]
        scored = score_sets(pred, [*truth, *unknown], np.zeros(0, bool), 1.0)
        rows += scored["sets"][: len(truth)]
        phantom += scored["phantom_reps"]
        recordings += 1
        del item, counted, pred  # before the iterator reads the next recording
    errors = [abs(r["pred"] - r["true"]) for r in rows]
    figures = set_count_figures(
        sets=len(rows),
        exact=sum(e == 0 for e in errors),
        within_1=sum(e <= 1 for e in errors),
        abs_error=float(sum(errors)),
        missed=sum(r["pred"] == 0 for r in rows),
    )
    return {**figures, "phantom_reps": phantom, "sets_counted": counted_sets, "recordings": recordings}
