"""The generic counter's parameters chosen on some classes or people, scored on the others.

The generic counter (:mod:`inference.generic`) has ratios that were chosen by hand on CaRa
P1-P3. Here the choice is a routine, so that it can be repeated per fold:

- **Tuning routine** (:func:`choose`): every combination of ``GRID`` is counted on every
  labelled set once (:func:`predict_grid`); for a fold, the combination with the highest
  +-1 share on the fold's training sets wins (ties: lower MAE, then the shipped values).
- **Leave-one-class-out**: for each class (CaRa's 36 classes, muvr's 26 exercise names, keyed
  ``dataset/label``), the parameters are chosen on all other classes (all participants)
  and the held-out class is scored with them.
- **Leave-one-subject-out**: for each of CaRa P1-P6 and muvr's one person, chosen on the
  other subjects, scored on the held-out one.
- **Exermote** (the classifier's data; never used here for tuning): each 5-minute workout
  counted as if the exercise were unknown (the pipeline's generic path) with the
  parameters chosen on all CaRa and muvr sets; sets scored as in :mod:`inference.scoring`,
  and repetitions centred in the labelled rest between sets (``setBreak``, outside every
  true set widened by 1 s) counted per hour of rest.
- **Rest-bounded**: both protocols again, with only the combinations that count no more in the
  rest of Exermote athletes ``EXERMOTE_TUNE`` than the shipped ratios; athletes 3-4 check it.

Jump rope and jumping jacks keep their hints and stay on :mod:`inference.peaks` (as the
pipeline counts them), which the grid does not change.

Run: ``python -m inference.lab evaluate-counter-folds [--data ROOT] [--json PATH]``.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from inference import generic
from inference.io import read_recording
from inference.lab.evaluate_counter import (
    CHECK,
    DEFAULT_DATA,
    HINTS,
    TABLE_HEAD,
    TUNE,
    labelled_sets,
    production_counter,
    summarise,
    table_line,
)
from inference.scoring import score_sets, true_sets

#: Exermote athletes whose rest tunes (a gate in :func:`sweep`, the rest bound in :func:`run`);
#: the others check it.
EXERMOTE_TUNE = ("1", "2")

#: Values tried for each ratio of :mod:`inference.generic` (the shipped value is in each list).
#: A first grid (periodicity 0.2-0.4, similarity 0.1-0.5, prominence 0.2-0.45, gap 2.5-4) chose
#: its corner (0.2, 0.1, 0.45, 4.0) in every fold, so this one reaches past it; -1 turns the
#: cycle-similarity gate off.
GRID: dict[str, tuple[float, ...]] = {
    "MIN_PERIODICITY": (0.1, 0.2, 0.3),
    "MIN_CYCLE_SIMILARITY": (-1.0, 0.1, 0.3),
    "MIN_PROMINENCE": (0.3, 0.45, 0.6),
    "SET_GAP_PERIODS": (2.5, 4.0, 6.0),
}


def combinations(grid: dict[str, tuple[float, ...]] = GRID) -> list[dict[str, float]]:
    """Every combination of ``grid``, as ``{name: value}`` dicts, in a stable order."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def shipped(grid: dict[str, tuple[float, ...]] = GRID) -> dict[str, float]:
    """The values :mod:`inference.generic` ships with, for the names in ``grid``."""
    return {name: getattr(generic, name) for name in grid}


@contextmanager
def parameters(values: dict[str, float]) -> Iterator[None]:
    """Set :mod:`inference.generic`'s module constants to ``values`` for the block, then restore them."""
    old = {name: getattr(generic, name) for name in values}
    try:
        for name, value in values.items():
            setattr(generic, name, value)
        yield
    finally:
        for name, value in old.items():
            setattr(generic, name, value)


def exermote_workouts(data: Path) -> list[tuple[str, object, list[dict], np.ndarray, float]]:
    """``(file, recording, true sets, set_break (n,), rate_hz)`` of each Exermote workout."""
    out = []
    for path in sorted((data / "exermote").glob("*.csv")):
        rec = read_recording(path, "exermote")
        set_break = np.asarray(rec.annotations["set_break"], dtype=bool)
        rate = (rec.time_s.size - 1) / float(rec.time_s[-1] - rec.time_s[0])
        truth = true_sets(np.asarray(rec.labels), set_break, 1.0)
        for t in truth:  # sample indices -> the recording's seconds
            t["start_s"] = float(rec.time_s[int(t["start_s"])])
            t["end_s"] = float(rec.time_s[int(t["end_s"]) - 1])
        out.append((path.name, rec, truth, set_break, rate))
    return out


def score_exermote(workouts, count) -> dict:
    """Per-set rows and rest figures of ``count(recording) -> sets`` on the Exermote workouts."""
    rows, phantom, rest_s, per_workout = [], 0, 0.0, []
    for name, rec, truth, set_break, rate in workouts:
        scored = score_sets(count(rec), truth, set_break, rate)
        rows += [{**r, "file": name, "subject": str(rec.subject)} for r in scored["sets"]]
        phantom += scored["phantom_reps"]
        rest_s += scored["rest_s"]
        per_workout.append((str(rec.subject), scored["phantom_reps"], scored["rest_s"]))
    return {
        "rows": rows,
        "per_workout": per_workout,
        "phantom_reps": phantom,
        "rest_hours": rest_s / 3600,
        "per_rest_hour": phantom / (rest_s / 3600),
    }


def predict_grid(data: Path, configs: list[dict[str, float]], *, exermote: bool = True, log=print) -> dict:
    """Count every labelled set (and the Exermote workouts) once per configuration.

    Returns ``{"rows": [{dataset, label, subject, file, true}], "pred": (configs, sets) int array,
    "exermote": [score_exermote(...) per configuration]}``.
    """
    items = list(labelled_sets(data))
    recordings = [read_recording(i.path, i.fmt) for i in items]
    hints = [HINTS.get(i.label, "unknown") if i.dataset == "cara" else "unknown" for i in items]
    rows = [
        {
            "dataset": i.dataset,
            "label": i.label,
            "subject": i.subject,
            "file": str(i.path.relative_to(data)),
            "true": i.true,
        }
        for i in items
    ]
    workouts = exermote_workouts(data) if exermote and (data / "exermote").is_dir() else []
    pred = np.zeros((len(configs), len(items)), dtype=np.int64)
    ex = []
    for k, values in enumerate(configs):
        with parameters(values):
            pred[k] = [production_counter(r, h) for r, h in zip(recordings, hints, strict=True)]
            if workouts:
                ex.append(score_exermote(workouts, _count_sets))
        if log:
            log(f"config {k + 1}/{len(configs)} {values}: +-1 {np.mean(np.abs(pred[k] - _true(rows)) <= 1):.3f}")
    return {"rows": rows, "pred": pred, "exermote": ex}


def _count_sets(recording):
    from inference.pipeline import count_recording

    return count_recording(recording, model=None, exercise="unknown").sets


def _true(rows: list[dict]) -> np.ndarray:
    return np.array([r["true"] for r in rows], dtype=np.int64)


def choose(
    pred: np.ndarray,
    true: np.ndarray,
    train: np.ndarray,
    configs: list[dict],
    default: dict,
    *,
    allowed: np.ndarray | None = None,
) -> int:
    """Index of the configuration with the best +-1 share on the ``train`` (bool mask) sets.

    Only configurations where ``allowed`` (bool per configuration; None: all) compete. Ties:
    lower mean absolute error, then the shipped ``default``, then the first.
    """
    err = np.abs(pred[:, train] - true[train])
    within = np.mean(err <= 1, axis=1)
    mae = np.mean(err, axis=1)
    ks = range(len(configs)) if allowed is None else np.flatnonzero(allowed)
    keys = [(-within[k], mae[k], configs[k] != default, int(k)) for k in ks]
    return min(keys)[3]


def held_out(
    grid: dict, folds: dict[str, np.ndarray], configs: list[dict], default: dict, allowed: np.ndarray | None = None
) -> dict:
    """Each fold's held-out rows scored with the configuration chosen on the other rows.

    ``folds``: name -> bool mask of the held-out sets. Returns per-row predictions, the chosen
    configuration per fold, and ``overall`` / ``per_class`` / ``per_dataset`` summaries.
    """
    rows, pred = grid["rows"], grid["pred"]
    true = _true(rows)
    out_pred = np.full(len(rows), -1, dtype=np.int64)
    chosen = {}
    for name, mask in folds.items():
        k = choose(pred, true, ~mask, configs, default, allowed=allowed)
        chosen[name] = configs[k]
        out_pred[mask] = pred[k, mask]
    scored = [{**r, "pred": int(p)} for r, p in zip(rows, out_pred, strict=True) if p >= 0]
    per_class: dict[str, list[dict]] = defaultdict(list)
    for r in scored:
        per_class[f"{r['dataset']}/{r['label']}"].append(r)
    counts = defaultdict(int)
    for c in chosen.values():
        counts[json.dumps(c, sort_keys=True)] += 1
    return {
        "chosen": chosen,
        "chosen_counts": dict(counts),
        "overall": {
            "cara": summarise([r for r in scored if r["dataset"] == "cara"]),
            "muvr": summarise([r for r in scored if r["dataset"] == "muvr"]),
            "all": summarise(scored),
        },
        "per_class": {name: summarise(g) for name, g in sorted(per_class.items())},
        "per_subject": {
            s: summarise([r for r in scored if r["subject"] == s]) for s in sorted({r["subject"] for r in scored})
        },
    }


def run(data: Path = DEFAULT_DATA, grid: dict = GRID, *, log=print) -> dict:
    """Leave-one-class-out, leave-one-subject-out and Exermote figures (module docstring)."""
    configs = combinations(grid)
    default = shipped(grid)
    if default not in configs:
        configs.append(default)
    predicted = predict_grid(data, configs, log=log)
    rows = predicted["rows"]
    classes = np.array([f"{r['dataset']}/{r['label']}" for r in rows])
    subjects = np.array([r["subject"] for r in rows])
    loco = held_out(predicted, {c: classes == c for c in sorted(set(classes))}, configs, default)
    loso = held_out(predicted, {s: subjects == s for s in sorted(set(subjects))}, configs, default)
    true = _true(rows)
    every = np.ones(len(rows), dtype=bool)
    k_all = choose(predicted["pred"], true, every, configs, default)
    k_ship = configs.index(default)
    report = {"grid": grid, "configs": len(configs), "loco": loco, "loso": loso}
    if predicted["exermote"]:
        for key, k in (("exermote", k_all), ("exermote_shipped", k_ship)):
            ex = predicted["exermote"][k]
            report[key] = {
                "params": configs[k],
                "summary": summarise(ex["rows"]),
                "phantom_reps": ex["phantom_reps"],
                "rest_hours": ex["rest_hours"],
                "per_rest_hour": ex["per_rest_hour"],
            }
        report["exermote_rest_by_config"] = [
            {"params": c, "per_rest_hour": e["per_rest_hour"], "within1": summarise(e["rows"])["within1"]}
            for c, e in zip(configs, predicted["exermote"], strict=True)
        ]
        # Rest as a bound: only configurations counting no more in the rest of the tuning
        # athletes than the shipped ratios compete; the other athletes check it.
        rest_tune = np.array([_rest_per_hour(e, EXERMOTE_TUNE, True) for e in predicted["exermote"]])
        allowed = rest_tune <= rest_tune[k_ship]
        k_bound = choose(predicted["pred"], true, every, configs, default, allowed=allowed)
        report["rest_bounded"] = {
            "bound_per_rest_hour": float(rest_tune[k_ship]),
            "allowed": int(allowed.sum()),
            "loco": held_out(predicted, {c: classes == c for c in sorted(set(classes))}, configs, default, allowed),
            "loso": held_out(predicted, {s: subjects == s for s in sorted(set(subjects))}, configs, default, allowed),
            "exermote_check": {
                key: {
                    "params": configs[k],
                    "summary": summarise(
                        [r for r in predicted["exermote"][k]["rows"] if r["subject"] not in EXERMOTE_TUNE]
                    ),
                    "per_rest_hour": _rest_per_hour(predicted["exermote"][k], EXERMOTE_TUNE, False),
                }
                for key, k in (("chosen", k_bound), ("shipped", k_ship))
            },
        }
    report["shipped_in_sample"] = summarise(
        [{**r, "pred": int(p)} for r, p in zip(rows, predicted["pred"][k_ship], strict=True)]
    )
    return report


def _rest_per_hour(scored: dict, subjects: tuple[str, ...], inside: bool) -> float:
    """Reps in rest per hour over the workouts of ``subjects`` (``inside``) or of the others."""
    parts = [(n, s) for subject, n, s in scored["per_workout"] if (subject in subjects) == inside]
    return sum(n for n, _ in parts) / (sum(s for _, s in parts) / 3600)


def sweep(data: Path, name: str, values: list[float], *, log=print) -> list[dict]:
    """One :mod:`inference.generic` constant tried at each of ``values``, the others as shipped.

    Per value: CaRa P1-P3 (tuning) and P4-P6, muvr, and the Exermote workouts of
    ``EXERMOTE_TUNE`` (tuning) and of the other athletes: set summaries, reps in rest per hour.
    """
    configs = [{name: v} for v in values]
    predicted = predict_grid(data, configs, log=log)
    rows = predicted["rows"]
    out = []
    for k, values_k in enumerate(configs):
        scored = [{**r, "pred": int(p)} for r, p in zip(rows, predicted["pred"][k], strict=True)]
        entry = {
            "params": values_k,
            "cara_tune": summarise([r for r in scored if r["dataset"] == "cara" and r["subject"] in TUNE]),
            "cara_check": summarise([r for r in scored if r["dataset"] == "cara" and r["subject"] in CHECK]),
            "muvr": summarise([r for r in scored if r["dataset"] == "muvr"]),
        }
        if predicted["exermote"]:
            with parameters(values_k):
                workouts = exermote_workouts(data)
                for key, keep in (("exermote_tune", True), ("exermote_check", False)):
                    part = [w for w in workouts if (str(w[1].subject) in EXERMOTE_TUNE) == keep]
                    e = score_exermote(part, _count_sets)
                    entry[key] = {
                        **summarise(e["rows"]),
                        "rest_hours": e["rest_hours"],
                        "per_rest_hour": e["per_rest_hour"],
                    }
        out.append(entry)
    return out


def markdown(report: dict) -> str:
    line, head = table_line, TABLE_HEAD
    out = []
    for key in ("loco", "loso"):
        out += [f"{key}:", head, *(line(k, v) for k, v in report[key]["overall"].items()), ""]
    if "exermote" in report:
        for key in ("exermote", "exermote_shipped"):
            e = report[key]
            out += [
                f"{key} {e['params']}:",
                head,
                line("exermote", e["summary"]),
                f"reps in rest: {e['phantom_reps']} in {e['rest_hours']:.2f} h = {e['per_rest_hour']:.1f}/h",
                "",
            ]
    if "rest_bounded" in report:
        b = report["rest_bounded"]
        out.append(
            f"rest-bounded (at most {b['bound_per_rest_hour']:.1f}/h on Exermote {EXERMOTE_TUNE}; "
            f"{b['allowed']} allowed):"
        )
        for key in ("loco", "loso"):
            out += [f"{key}:", head, *(line(k, v) for k, v in b[key]["overall"].items()), ""]
        for key, e in b["exermote_check"].items():
            out += [
                f"exermote check athletes, {key} {e['params']}: {line('exermote', e['summary'])} "
                f"rest {e['per_rest_hour']:.1f}/h"
            ]
        out.append("")
    out += ["loco per class:", head, *(line(k, v) for k, v in report["loco"]["per_class"].items())]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m inference.lab evaluate-counter-folds", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--sweep", help="NAME=v1,v2,...: one constant of inference.generic at each value instead")
    args = parser.parse_args(argv)
    if not (args.data / "cara").is_dir() and not (args.data / "muvr").is_dir():
        print(f"no CaRa or muvr data under {args.data}")  # noqa: T201
        return 2
    if args.sweep:
        name, _, values = args.sweep.partition("=")
        report = sweep(args.data, name, [float(v) for v in values.split(",")])
        print(json.dumps(report, indent=1))  # noqa: T201
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
        return 0
    report = run(args.data)
    print(markdown(report))  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0
