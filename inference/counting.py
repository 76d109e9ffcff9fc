"""The phase state machine: per-sample phase labels -> sets and repetitions.

A repetition is counted on ``break -> <e>.first_half -> <e>.second_half`` (the
Exermote labelling: ``Break -> firstHalf -> secondHalf -> Break``). Before the
state machine runs, phase runs shorter than a minimum duration are merged into
their neighbours, so one-sample flickers count nothing; the minimum durations and
the set gap are learned from training labels (:func:`learn_counting_params`).
Repetitions closer than the set gap form one set; a set takes the exercise that
most of its repetitions have, since a set never switches exercise in the data.
:func:`count_probabilities` then extends each set by the cycles that repeat its own
(:mod:`inference.cycles`), where the classifier lost the athlete mid-set, and relabels
the phases of the repetitions it added.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from inference.cycles import extend_sets
from inference.io import BREAK
from inference.results import CountedSet, Repetition


@dataclass(frozen=True)
class CountingParams:
    """State-machine parameters, stored in the model metadata.

    Attributes:
        min_run_s: per phase name, the shortest run (s) that counts; shorter runs are flicker.
        set_gap_s: repetitions further apart than this (s) start a new set.
        smoothing_s: width (s) of the moving average applied to phase probabilities.
        decoder: ``viterbi`` (:func:`decode_phases`) or ``argmax`` (per-sample).
        cycle_match: least correlation (0-1) of a cycle with its set's cycles for it to be
            added to the set (:func:`inference.cycles.extend_sets`); 0 turns that off.
        break_weight: factor on the ``break`` probability before decoding; above 1 a sample
            needs clearer movement to count as a repetition phase. Chosen on held-out
            athletes (:func:`inference.lab.evaluate.score_heldout`); 1 leaves it alone.
    """

    min_run_s: dict[str, float] = field(default_factory=dict)
    set_gap_s: float = 6.0
    smoothing_s: float = 0.5
    decoder: str = "viterbi"
    cycle_match: float = 0.0
    break_weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.break_weight > 0:
            raise ValueError(f"break_weight must be positive, not {self.break_weight}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CountingParams:
        return cls(
            min_run_s=dict(d.get("min_run_s", {})),
            set_gap_s=float(d.get("set_gap_s", 6.0)),
            smoothing_s=float(d.get("smoothing_s", 0.5)),
            decoder=str(d.get("decoder", "argmax")),
            cycle_match=float(d.get("cycle_match", 0.0)),
            break_weight=float(d.get("break_weight", 1.0)),
        )


def runs(seq: Sequence | np.ndarray) -> list[tuple[object, int, int]]:
    """Run-length encoding: ``[(value, start, stop), ...]`` with ``stop`` exclusive."""
    arr = np.asarray(seq)
    if arr.size == 0:
        return []
    change = np.flatnonzero(arr[1:] != arr[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [arr.size]])
    return [(arr[s], int(s), int(e)) for s, e in zip(starts, stops, strict=True)]


def smooth_probabilities(probs: np.ndarray, rate_hz: float, smoothing_s: float) -> np.ndarray:
    """Centred moving average over time. (n, k) -> (n, k); identity for widths <= 1 sample."""
    width = round(smoothing_s * rate_hz)
    if width <= 1 or len(probs) == 0:
        return probs
    padded = np.pad(probs, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
    cs = np.cumsum(np.concatenate([np.zeros((1, probs.shape[1]), probs.dtype), padded]), axis=0)
    return (cs[width:] - cs[:-width]) / width


def _allowed_transitions(labels: Sequence[str]) -> np.ndarray:
    """(k, k) bool: which phase may follow which (the repetition grammar).

    break -> first(e); first(e) -> second(e) | break (an aborted repetition);
    second(e) -> break | first(e) (a pause shorter than the classifier resolves).
    """
    k = len(labels)
    allowed = np.zeros((k, k), bool)
    for i, a in enumerate(labels):
        ex_a, half_a = _split(a)
        for j, b in enumerate(labels):
            ex_b, half_b = _split(b)
            if half_a is None:
                allowed[i, j] = half_b == "first_half"
            elif half_a == "first_half":
                allowed[i, j] = half_b is None or (half_b == "second_half" and ex_b == ex_a)
            else:
                allowed[i, j] = half_b is None or (half_b == "first_half" and ex_b == ex_a)
    return allowed


def decode_phases(probs: np.ndarray, labels: Sequence[str], rate_hz: float, params: CountingParams) -> np.ndarray:
    """Most likely phase sequence under the repetition grammar (Viterbi).

    Each phase becomes a left-to-right chain of ``min_run_s * rate_hz`` states whose
    last state loops, so every run lasts at least its minimum duration; chains are
    joined by :func:`_allowed_transitions`. A repetition whose first half the
    classifier scores below ``break`` is still found when its second half is clear,
    and a second half can never appear without a first half.

    Args:
        probs: float, shape (n, k), per-sample phase probabilities (rows sum to 1).
        labels: k phase names.

    Returns:
        int, shape (n,), phase indices.
    """
    n, k = probs.shape
    if n == 0:
        return np.zeros(0, np.int64)
    lengths = [max(1, round(params.min_run_s.get(name, 0.0) * rate_hz)) for name in labels]
    phase_of = np.repeat(np.arange(k), lengths)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    last = first + np.asarray(lengths) - 1
    s = len(phase_of)
    # Each state has a few predecessors (its chain neighbour, itself if it loops, the last
    # states of the phases allowed before it): a (s, width) table instead of a dense (s, s)
    # transition matrix makes each step ~7x less work. Sorted, so ties go to the lowest
    # state; short rows are padded with their first entry, which leaves the maximum unchanged.
    preds: list[set[int]] = [set() for _ in range(s)]
    for i in range(k):
        for j in range(first[i] + 1, last[i] + 1):
            preds[j].add(j - 1)
        preds[last[i]].add(int(last[i]))
    allowed = _allowed_transitions(labels)
    for i, j in zip(*np.nonzero(allowed), strict=True):
        preds[first[j]].add(int(last[i]))
    ordered = [sorted(p) for p in preds]
    width = max(len(p) for p in ordered)
    pred = np.array([p + [p[0]] * (width - len(p)) for p in ordered])  # (s, width)
    rows = np.arange(s)
    log_b = np.log(np.clip(probs, 1e-6, 1.0))[:, phase_of]  # (n, s)
    back = np.empty((n, s), np.int16)
    start = np.full(s, -np.inf)
    start[first] = 0.0
    delta = start + log_b[0]
    for t in range(1, n):
        scores = delta[pred]
        best = scores.argmax(axis=1)
        back[t] = pred[rows, best]
        delta = scores[rows, best] + log_b[t]
    path = np.empty(n, np.int64)
    path[-1] = int(delta.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return phase_of[path]


def remove_flicker(phases: np.ndarray, labels: Sequence[str], min_run_samples: dict[str, int]) -> np.ndarray:
    """Merge runs shorter than their phase's minimum into the longer neighbour.

    Shortest runs are merged first, so a flicker inside a long run disappears before
    it can split it. Shapes (n,) int -> (n,) int.
    """
    out = np.asarray(phases).copy()
    while True:
        rs = runs(out)
        short = [
            (stop - start, i)
            for i, (value, start, stop) in enumerate(rs)
            if stop - start < min_run_samples.get(labels[int(value)], 1) and len(rs) > 1
        ]
        if not short:
            return out
        _, i = min(short)
        _value, start, stop = rs[i]
        left = rs[i - 1] if i > 0 else None
        right = rs[i + 1] if i + 1 < len(rs) else None
        if left is None or (right is not None and right[2] - right[1] > left[2] - left[1]):
            out[start:stop] = right[0]
        else:
            out[start:stop] = left[0]


def _split(label: str) -> tuple[str | None, str | None]:
    if "." not in label:
        return None, None
    exercise, half = label.split(".", 1)
    return exercise, half


def phases_from_probabilities(
    probs: np.ndarray, labels: Sequence[str], rate_hz: float, params: CountingParams
) -> np.ndarray:
    """Smooth (n, k) probabilities, weight ``break`` by ``params.break_weight`` and decode
    them into (n,) phase indices."""
    smoothed = smooth_probabilities(probs, rate_hz, params.smoothing_s)
    if params.break_weight != 1.0 and BREAK in labels:
        smoothed = smoothed.copy()
        smoothed[:, list(labels).index(BREAK)] *= params.break_weight
        smoothed /= smoothed.sum(axis=1, keepdims=True)
    if params.decoder == "viterbi":
        return decode_phases(smoothed, labels, rate_hz, params)
    return smoothed.argmax(axis=1)


def count_probabilities(
    probs: np.ndarray,
    labels: Sequence[str],
    rate_hz: float,
    params: CountingParams,
    gravity: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[CountedSet, ...]]:
    """Phase probabilities -> ``(phases, sets)``: decode, count, then extend each set by its
    repeated cycles when ``gravity`` (m, 3) is given and ``params.cycle_match`` > 0; the
    phases then show the added repetitions too (:func:`with_repetitions`).

    Shapes: probs (m, k) -> phases (m,) int indices into ``labels``.
    """
    phases = phases_from_probabilities(probs, labels, rate_hz, params)
    sets = count_phases(phases, labels, rate_hz, params)
    if gravity is not None and params.cycle_match > 0:
        extended = extend_sets(sets, gravity, rate_hz, params.cycle_match)
        if extended != sets:  # regroup: filling a gap can join two sets into one
            counted = {r for s in sets for r in s.repetitions}
            reps = [
                (s.exercise, round(r.start_s * rate_hz), round(r.end_s * rate_hz))
                for s in extended
                for r in s.repetitions
            ]
            sets = group_sets(reps, rate_hz, params.set_gap_s, method="classifier", drop_one_offs=True)
            added = [(s.exercise, r) for s in sets for r in s.repetitions if r not in counted]
            phases = with_repetitions(phases, added, labels, rate_hz)
    return phases, sets


def with_repetitions(
    phases: np.ndarray, reps: Sequence[tuple[str, Repetition]], labels: Sequence[str], rate_hz: float
) -> np.ndarray:
    """``phases`` (n,) with the ``break`` samples inside each ``(exercise, repetition)`` relabelled:
    the first half of its span ``<exercise>.first_half``, the rest ``.second_half``.

    Phases then agree with repetitions added by :func:`~inference.cycles.extend_sets`, which
    the classifier read as rest (Exermote LOSO, 4-class frame accuracy: one network 94.2 % to
    94.7 %, ten averaged 95.2 % to 95.4 %). Repetition times are in seconds on the ``rate_hz``
    grid of ``phases``; exercises without both halves in ``labels`` are left alone.
    """
    labels = list(labels)
    if not reps or BREAK not in labels:
        return phases
    out = np.asarray(phases).copy()
    rest = labels.index(BREAK)
    for exercise, rep in reps:
        halves = [f"{exercise}.first_half", f"{exercise}.second_half"]
        if not all(h in labels for h in halves):
            continue
        start, stop = round(rep.start_s * rate_hz), min(round(rep.end_s * rate_hz), len(out))
        middle = (start + stop) // 2
        for (a, b), half in (((start, middle), halves[0]), ((middle, stop), halves[1])):
            span = out[a:b]
            span[span == rest] = labels.index(half)
    return out


def count_phases(
    phases: np.ndarray,
    labels: Sequence[str],
    rate_hz: float,
    params: CountingParams,
    *,
    method: str = "classifier",
) -> tuple[CountedSet, ...]:
    """Count repetitions in a per-sample phase sequence.

    Args:
        phases: int, shape (n,), indices into ``labels``, one per sample at ``rate_hz``.
        labels: phase names (``break``, ``<exercise>.first_half``, ``<exercise>.second_half``).
        rate_hz: sample rate of ``phases`` (Hz); times are ``index / rate_hz`` seconds.
        params: minimum run durations and set gap (from the model metadata).

    Returns:
        Sets in time order. A repetition starts where its first half starts and ends
        where its second half ends.
    """
    labels = list(labels)
    min_samples = {name: max(1, round(s * rate_hz)) for name, s in params.min_run_s.items()}
    clean = remove_flicker(np.asarray(phases, dtype=np.int64), labels, min_samples)
    reps: list[tuple[str, int, int]] = []  # (exercise, start, stop)
    state, exercise, rep_start = BREAK, None, 0
    for value, start, stop in runs(clean):
        ex, half = _split(labels[int(value)])
        if half is None:
            state, exercise = BREAK, None
        elif half == "first_half":
            # A first half directly after a second half of the same exercise means the
            # break was shorter than the classifier resolves: treat it as a break.
            if state in (BREAK, "second_half"):
                state, exercise, rep_start = "first_half", ex, start
            else:
                state, exercise = "invalid", None
        elif half == "second_half":
            if state == "first_half" and ex == exercise:
                reps.append((ex, rep_start, stop))
                state = "second_half"
            elif state == "second_half" and ex == exercise and reps:
                reps[-1] = (ex, reps[-1][1], stop)  # the same second half, split by flicker
            else:
                state, exercise = "invalid", None
    return group_sets(reps, rate_hz, params.set_gap_s, method=method, drop_one_offs=True)


def group_sets(
    reps: Sequence[tuple[str, int, int]], rate_hz: float, set_gap_s: float, *, method: str, drop_one_offs: bool = False
) -> tuple[CountedSet, ...]:
    """Group ``(exercise, start, stop)`` repetitions (sample indices) into sets by the gap.

    With ``drop_one_offs``, a set's first or last repetition is dropped when it is of
    another exercise than the two next to it: a set never switches exercise in the data,
    and such one-offs are the athlete getting into or out of position (Exermote LOSO, five
    networks: the one repetition counted in rest was a "squat" right after a burpee set).
    """
    groups: list[list[tuple[str, int, int]]] = []
    for rep in reps:
        if groups and (rep[1] - groups[-1][-1][2]) / rate_hz <= set_gap_s:
            groups[-1].append(rep)
        else:
            groups.append([rep])
    sets = []
    for group in groups:
        kept = _without_one_offs(group) if drop_one_offs else group
        exercise = Counter(r[0] for r in kept).most_common(1)[0][0]
        repetitions = tuple(Repetition(start / rate_hz, stop / rate_hz) for _, start, stop in kept)
        sets.append(CountedSet(exercise=exercise, method=method, repetitions=repetitions))
    return tuple(sets)


def _without_one_offs(group: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """``group`` without a first or last repetition whose exercise differs from the two next to it."""
    if len(group) >= 3 and group[-1][0] != group[-2][0] == group[-3][0]:
        group = group[:-1]
    if len(group) >= 3 and group[0][0] != group[1][0] == group[2][0]:
        group = group[1:]
    return group
