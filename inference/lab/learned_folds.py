"""The learned counter on held-out classes and people, with and without exemplars, beside issue 20's.

Folds (a network is trained per fold by :func:`inference.lab.train_counter.train_density`):

- **Leave-subjects-out**: :data:`SUBJECT_FOLDS`, CaRa's participants three at a time, 2 folds
  (muvr's one person is held out with its classes below; a network per participant would be 7
  trainings, more than this 2-core machine's session allowed);
- **Leave-classes-out**: the 62 classes (CaRa's 36, muvr's 26 exercise names) in
  :data:`CLASS_FOLDS` groups by a fixed shuffle; a network per group, trained on the others.
  Whole groups, not one class at a time: a network per class would be 62 trainings;
- **Exermote**: the shipped network (trained on everything but Exermote athletes 3-4) counts
  athletes 3-4's workouts as ``unknown`` (sets and repetitions in labelled rest per hour) and
  their set cuts.

Exemplars: CaRa, the person's session-1 set of the class for each of its session-2 sets;
muvr, the exercise's first set for its later ones; Exermote, the athlete's first set of the
exercise for the later ones (the set's labelled range). The sets that have an exemplar are
scored with and without it; the issue-20 counter (:mod:`inference.generic`, as the pipeline
runs it) on the same sets beside.

Densities of held-out examples are kept in ``var/learned_folds/`` so that scoring is repeatable
without training again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from inference.density import EXEMPLAR_SCALE_BOUNDS, GRID_HZ, CounterSpec, counts_in_ranges, density_sets, scale_for
from inference.generic import MAX_PERIOD_S, MIN_PERIOD_S, count_generic
from inference.lab.evaluate_counter import HINTS, summarise
from inference.lab.train_counter import (
    DEFAULT_DATA,
    CounterHyperparameters,
    Example,
    load_examples,
    predict_density,
)

CLASS_FOLDS = 2
SUBJECT_FOLDS = (("P1", "P2", "P3"), ("P4", "P5", "P6"))
#: The fold whose network ships (``train-counter``): trained on CaRa P1-P3, muvr and Exermote
#: athletes 1-2, so that P4-P6 and Exermote athletes 3-4 are its own held-out check.
SHIPPED_FOLD = "subject-P4-P5-P6"
CACHE = Path("var/learned_folds")
#: Epochs of a fold's network (the shipped network is one of them).
FOLD_EPOCHS = 40
#: CaRa classes that are gym or calisthenics exercises (the "exercise" group with muvr and Exermote).
CARA_EXERCISES = ("Crunch", "Pullup", "Jumpingjack", "Skippingrope")
#: Classes the pipeline counts with the peak counter (their hints), not the generic counters.
PEAK_CLASSES = tuple(HINTS)


def class_groups(keys: list[str], k: int = CLASS_FOLDS, seed: int = 0) -> dict[str, int]:
    """Class key -> fold index, a fixed shuffle of the sorted keys dealt into ``k`` groups."""
    order = sorted(set(keys))
    rng = np.random.default_rng(seed)
    rng.shuffle(order)
    return {key: i % k for i, key in enumerate(order)}


def folds(examples: list[Example]) -> dict[str, tuple[list[int], list[int]]]:
    """Fold name -> (train indices, held-out indices) over ``examples``.

    Exermote cuts of athletes 1-2 always train; athletes 3-4 are never trained on in a fold.
    """
    labelled = [i for i, e in enumerate(examples) if e.dataset in ("cara", "muvr")]
    exer_train = [i for i, e in enumerate(examples) if e.dataset == "exermote" and e.subject in ("1", "2")]
    out = {}
    for subjects in SUBJECT_FOLDS:
        held = [i for i in labelled if examples[i].subject in subjects]
        held_set = set(held)
        out["subject-" + "-".join(subjects)] = ([i for i in labelled if i not in held_set] + exer_train, held)
    groups = class_groups([examples[i].key for i in labelled])
    for g in range(CLASS_FOLDS):
        held = [i for i in labelled if groups[examples[i].key] == g]
        held_set = set(held)
        out[f"classes-{g}"] = ([i for i in labelled if i not in held_set] + exer_train, held)
    return out


def run_folds(examples: list[Example], hp: CounterHyperparameters, *, only: list[str] | None = None, log=print) -> None:
    """Train each fold's network and keep its held-out densities in :data:`CACHE`."""
    from inference.lab.train_counter import train_density

    CACHE.mkdir(parents=True, exist_ok=True)
    for name, (train, held) in folds(examples).items():
        if only and name not in only:
            continue
        target = CACHE / f"{name}.npz"
        if target.exists() and (CACHE / f"{name}.keras").exists():
            log(f"{name}: kept from {target}")
            continue
        log(f"{name}: training on {len(train)}, holding out {len(held)}")
        net = train_density([examples[i] for i in train], hp, log=log)
        dens = {examples[i].name: predict_density(net, examples[i].acc) for i in held}
        np.savez_compressed(target, **{k.replace("/", "|"): v for k, v in dens.items()})
        net.save(CACHE / f"{name}.keras")


def shipped_network(examples: list[Example], hp: CounterHyperparameters, *, log=print):
    """The network of :data:`SHIPPED_FOLD`, trained by :func:`run_folds` unless kept in :data:`CACHE`."""
    import keras

    target = CACHE / f"{SHIPPED_FOLD}.keras"
    if not target.exists():
        run_folds(examples, hp, only=[SHIPPED_FOLD], log=log)
    return keras.saving.load_model(target)


def load_densities(name: str) -> dict[str, np.ndarray]:
    with np.load(CACHE / f"{name}.npz") as z:
        return {k.replace("|", "/"): z[k] for k in z.files}


def learned_count(density: np.ndarray, spec: CounterSpec, scale: float = 1.0) -> int:
    """What the serving path counts from a density: the sum of its sets' repetitions."""
    return sum(s.reps for s in density_sets(density * scale, spec, exercise="unknown"))


def hybrid_count(density: np.ndarray, sets: list[list[float]], scale: float = 1.0) -> int:
    """The learned density counted where the issue-20 counter found sets (the serving path's
    :func:`inference.density.counts_in_ranges`)."""
    return sum(n for _, _, n in counts_in_ranges(density * scale, sets, GRID_HZ))


def exemplar_pairs(examples: list[Example]) -> dict[str, str]:
    """Query example name -> exemplar example name (see the module docstring)."""
    by: dict[tuple, list[Example]] = defaultdict(list)
    for e in examples:
        if e.kind == "set":
            by[(e.dataset, e.label, e.subject)].append(e)
    out = {}
    for (dataset, _, _), group in by.items():
        items = sorted(group, key=lambda e: (e.order, e.name))
        if dataset == "cara":
            first = [e for e in items if e.session == 1]
            if first:
                out.update({e.name: first[0].name for e in items if e.session == 2})
        else:
            out.update({e.name: items[0].name for e in items[1:]})
    return out


# --- Exemplars for the generic counter (measured, not routed) ---------------------------

#: How far a query's repetition period may be from its exemplar's (ratio either way).
EXEMPLAR_TEMPO_RATIO = 1.6
#: Candidate exemplar periods, as fractions of its length over its count (a recording holds its
#: repetitions and some lead-in and lead-out, so the true period is at most that).
EXEMPLAR_PERIOD_FRACTIONS = tuple(float(f) for f in np.geomspace(0.35, 1.1, 12))
#: Width (ratio either way) of the period band an exemplar is counted in for each candidate.
EXEMPLAR_PERIOD_BAND = 1.2


def exemplar_period(recording, reps: int, *, exercise: str = "unknown") -> float | None:
    """The repetition period (s) an exemplar of ``reps`` repetitions shows, or None.

    Each candidate period (:data:`EXEMPLAR_PERIOD_FRACTIONS` of its length over ``reps``) counts
    the exemplar within :data:`EXEMPLAR_PERIOD_BAND`; the candidate whose count is nearest
    ``reps`` wins (ties: the longer period). So the exemplar decides what one repetition is: a
    push-up's down and up, not each half, when the halves look alike.
    """
    base = recording.duration_s / max(reps, 1)
    best: tuple[int, float] | None = None
    for f in EXEMPLAR_PERIOD_FRACTIONS:
        period = base * f
        if not MIN_PERIOD_S <= period <= MAX_PERIOD_S:
            continue
        bounds = (period / EXEMPLAR_PERIOD_BAND, period * EXEMPLAR_PERIOD_BAND)
        n = sum(s.reps for s in count_generic(recording, exercise=exercise, period_bounds=bounds))
        if best is None or abs(n - reps) <= best[0]:
            best = (abs(n - reps), period)
    return None if best is None else best[1]


def exemplar_period_bounds(period: float) -> tuple[float, float]:
    """Period bounds (s) for sets of the movement an exemplar of ``period`` s shows."""
    return period / EXEMPLAR_TEMPO_RATIO, period * EXEMPLAR_TEMPO_RATIO


def generic_with_exemplars(data: Path, examples: list[Example], generic: dict[str, dict]) -> list[dict]:
    """The issue-20 counter with each exemplar pair (the pairs the learned counter is scored on,
    classes the generic counter counts), two ways: ``generic_period``, the period band taken
    from the exemplar (:func:`exemplar_period`); ``generic_ratio``, the plain count times the
    exemplar's count over the plain count on it (bounded as the learned counter's scale). Cached."""
    from inference.io import read_recording

    path = CACHE / "generic_exemplars.json"
    if path.exists():
        return json.loads(path.read_text())
    by = {e.name: e for e in examples}
    rows = []
    for query, exemplar in exemplar_pairs(examples).items():
        e, x = by[query], by[exemplar]
        if e.dataset not in ("cara", "muvr") or e.label in PEAK_CLASSES:
            continue
        fmt = "cara" if e.dataset == "cara" else "csv"
        period = exemplar_period(read_recording(data / exemplar, fmt), x.count)
        bounds = None if period is None else exemplar_period_bounds(period)
        banded = sum(s.reps for s in count_generic(read_recording(data / query, fmt), period_bounds=bounds))
        lo, hi = EXEMPLAR_SCALE_BOUNDS
        ratio = float(np.clip(x.count / max(generic[exemplar]["reps"], 1), lo, hi))
        rows.append({"name": query, "dataset": e.dataset, "true": e.count, "generic": generic[query]["reps"],
                     "generic_period": banded, "generic_ratio": round(ratio * generic[query]["reps"])})  # fmt: skip
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return rows


def generic_counts(data: Path, examples: list[Example]) -> dict[str, dict]:
    """The issue-20 counter as the pipeline runs it on every CaRa and muvr example (cached):
    ``{name: {"reps": int, "sets": [[start_s, end_s], ...]}}``."""
    from inference.io import read_recording
    from inference.pipeline import count_recording

    path = CACHE / "generic_counts.json"
    if path.exists():
        return json.loads(path.read_text())
    out = {}
    for e in examples:
        if e.dataset not in ("cara", "muvr"):
            continue
        rec = read_recording(data / e.name, "cara" if e.dataset == "cara" else "csv")
        hint = HINTS.get(e.label, "unknown") if e.dataset == "cara" else "unknown"
        result = count_recording(rec, model=None, exercise=hint)
        out[e.name] = {"reps": result.total_reps, "sets": [[s.start_s, s.end_s] for s in result.sets]}
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def group_of(e: Example) -> str:
    if e.dataset == "cara":
        return "exercise" if e.label in CARA_EXERCISES else "daily"
    return "exercise"


def score(examples: list[Example], spec: CounterSpec, generic: dict[str, int]) -> dict:
    """Rows per held-out example and fold protocol: true, generic, learned, learned with exemplar."""
    by_name = {e.name: e for e in examples}
    pairs = exemplar_pairs(examples)
    rows = []
    for name, (_, held) in folds(examples).items():
        protocol = "subject" if name.startswith("subject") else "classes"
        if not (CACHE / f"{name}.npz").exists():
            continue
        dens = load_densities(name)
        for i in held:
            e = examples[i]
            row = {
                "protocol": protocol, "fold": name, "dataset": e.dataset, "label": e.label, "subject": e.subject,
                "session": e.session, "name": e.name, "true": e.count, "group": group_of(e),
                "peak_class": e.label in PEAK_CLASSES, "generic": generic[e.name]["reps"],
                "learned": learned_count(dens[e.name], spec), "raw_sum": float(dens[e.name].sum()),
                "hybrid": hybrid_count(dens[e.name], generic[e.name]["sets"]),
            }  # fmt: skip
            ex_name = pairs.get(e.name)
            if ex_name is not None and ex_name in dens:
                scale = scale_for(dens[ex_name], by_name[ex_name].count)
                row["exemplar"] = ex_name
                row["learned_exemplar"] = learned_count(dens[e.name], spec, scale)
                row["hybrid_exemplar"] = hybrid_count(dens[e.name], generic[e.name]["sets"], scale)
            rows.append(row)
    return {"rows": rows}


#: The counters scored without and with an exemplar (row keys).
PLAIN = ("generic", "learned", "hybrid")
WITH_EXEMPLAR = ("learned_exemplar", "hybrid_exemplar")


def summaries(rows: list[dict], pred: str) -> dict:
    return summarise([{"true": r["true"], "pred": r[pred]} for r in rows if pred in r])


def tables(rows: list[dict]) -> dict:
    """Summaries per protocol and group, for each counter; the sets with an exemplar apart."""
    out = {}
    for protocol in ("subject", "classes"):
        pr = [r for r in rows if r["protocol"] == protocol]
        groups = {
            "CaRa, all classes": [r for r in pr if r["dataset"] == "cara"],
            "CaRa, generic-counted classes": [r for r in pr if r["dataset"] == "cara" and not r["peak_class"]],
            "exercises (muvr, CaRa Crunch/Pullup)": [r for r in pr if r["group"] == "exercise" and not r["peak_class"]],
            "muvr": [r for r in pr if r["dataset"] == "muvr"],
            "CaRa session 2": [r for r in pr if r["dataset"] == "cara" and r["session"] == 2],
        }
        out[protocol] = {}
        for gname, g in groups.items():
            with_ex = [r for r in g if "learned_exemplar" in r]
            out[protocol][gname] = {
                **{k: summaries(g, k) for k in PLAIN},
                "with_exemplar_sets": {k: summaries(with_ex, k) for k in PLAIN + WITH_EXEMPLAR},
            }
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m inference.lab learned-folds", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=FOLD_EPOCHS)
    parser.add_argument("--only", nargs="*", help="fold names to train (default: all)")
    parser.add_argument("--score-only", action="store_true")
    parser.add_argument("--json", type=Path, default=Path("reports/learned_folds.json"))
    args = parser.parse_args(argv)
    examples = load_examples(args.data)
    hp = CounterHyperparameters(epochs=args.epochs)
    if not args.score_only:
        run_folds(examples, hp, only=args.only)
    done = [n for n in folds(examples) if (CACHE / f"{n}.npz").exists()]
    if len(done) < len(folds(examples)):
        print(f"folds with densities: {done}")  # noqa: T201
        return 0
    generic = generic_counts(args.data, examples)
    result = score(examples, CounterSpec(version="folds"), generic)
    result["tables"] = tables(result["rows"])
    pairs = generic_with_exemplars(args.data, examples, generic)
    result["generic_exemplars"] = {
        ds: {k: summaries([r for r in pairs if r["dataset"] == ds], k) for k in GENERIC_EXEMPLAR}
        for ds in ("cara", "muvr")
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    text = markdown(result)
    args.json.with_suffix(".md").write_text(text + "\n")
    print(text)  # noqa: T201
    return 0


def choose_routing(report: dict) -> dict:
    """Per exercise group, the counter with the lowest held-out MAE, without and with an exemplar.

    Both protocols' held-out sets pooled: ``exercise`` on the exercises (muvr, CaRa Crunch and
    Pullup), ``unknown`` on every CaRa class the generic counters count. With an exemplar, on the
    sets that have one. Returns :class:`~inference.density.CounterSpec` ``routing``.
    """
    rows = report["rows"]
    groups = {
        "exercise": [r for r in rows if r["group"] == "exercise" and not r["peak_class"]],
        "unknown": [r for r in rows if r["dataset"] == "cara" and not r["peak_class"]],
    }
    names = {"generic": "generic", "learned": "learned", "hybrid": "hybrid",
             "learned_exemplar": "learned", "hybrid_exemplar": "hybrid"}  # fmt: skip
    routing = {}
    for group, g in groups.items():
        with_ex = [r for r in g if "learned_exemplar" in r]
        plain = min(PLAIN, key=lambda k: summaries(g, k)["mae"])
        exemplar = min(("generic", *WITH_EXEMPLAR), key=lambda k: summaries(with_ex, k)["mae"])
        routing[group] = {"plain": names[plain], "exemplar": names[exemplar]}
    return routing


GENERIC_EXEMPLAR = ("generic", "generic_period", "generic_ratio")
GENERIC_EXEMPLAR_LABELS = {
    "generic": "generic, no exemplar",
    "generic_period": "generic, period band from the exemplar",
    "generic_ratio": "generic, count scaled by the exemplar",
}
LABELS = {
    "generic": "generic (issue 20)",
    "learned": "learned",
    "hybrid": "hybrid (learned inside generic sets)",
    "learned_exemplar": "learned + exemplar",
    "hybrid_exemplar": "hybrid + exemplar",
}


def _line(name: str, s: dict) -> str:
    if not s["sets"]:
        return f"| {name} | 0 | | | | |"
    return f"| {name} | {s['sets']} | {s['exact']:.0%} | {s['within1']:.0%} | {s['mae']:.2f} | {s['mre']:.0%} |"


def markdown(result: dict) -> str:
    """The held-out tables of :func:`main`'s result, as Markdown (docs/accuracy.md)."""
    head = "| counter | sets | exact | +-1 | MAE (reps) | MRE |\n|---|---|---|---|---|---|"
    out = []
    names = {"subject": "Leave-subjects-out (P1-P3 / P4-P6)", "classes": f"Leave-classes-out ({CLASS_FOLDS} groups)"}
    for protocol, groups in result["tables"].items():
        for group, t in groups.items():
            if not t["generic"]["sets"]:
                continue
            out += [f"**{names[protocol]}: {group}**", "", head]
            out += [_line(LABELS[k], t[k]) for k in PLAIN]
            w = t["with_exemplar_sets"]
            out += [_line(f"{LABELS[k]}, sets with an exemplar", w[k]) for k in PLAIN + WITH_EXEMPLAR]
            out.append("")
    rows = [r for r in result["rows"] if r["protocol"] == "classes" and not r["peak_class"]]
    per_class: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        per_class[f"{r['dataset']}/{r['label']}"].append(r)
    out += [
        "**Per class, leave-classes-out** (MAE in repetitions; exemplar columns on the sets that have one)",
        "",
        "| class | sets | generic | learned | hybrid | sets with exemplar | generic | learned + exemplar |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, g in sorted(per_class.items()):
        w = [r for r in g if "learned_exemplar" in r]
        cells = [f"{summaries(g, k)['mae']:.2f}" for k in PLAIN]
        ex_cells = [f"{summaries(w, k)['mae']:.2f}" if w else "" for k in ("generic", "learned_exemplar")]
        out.append(f"| {key} | {len(g)} | " + " | ".join(cells) + f" | {len(w)} | " + " | ".join(ex_cells) + " |")
    if "generic_exemplars" in result:
        out += ["", "#### The generic counter with the same exemplars (measured, not routed)", "", head]
        for ds, t in result["generic_exemplars"].items():
            out += [_line(f"{ds}: {GENERIC_EXEMPLAR_LABELS[k]}", t[k]) for k in GENERIC_EXEMPLAR]
    routing = choose_routing(result)
    out += ["", "Routing chosen (lowest held-out MAE per group): " + json.dumps(routing, sort_keys=True)]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
