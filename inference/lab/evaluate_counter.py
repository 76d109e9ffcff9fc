"""Evaluate a class-agnostic repetition counter on every labelled set in ``../shared/data``.

Datasets (each file is one set with its true count in the name):

- CaRa (Nguyen et al., TPAMI 2025): ``cara/<class>/<participant>/session-<k>/<ms>_<P>_<class>_<count>.csv``,
  35 classes of exercise and daily-life movement, P1-P6, watch accelerometer + gyroscope.
- muvr: ``muvr/<group>/<exercise>_<nn>_reps<count>.csv``, 27 gym exercises, one person,
  wrist accelerometer only, 50 Hz.

The counter is called as it is in production for an unknown exercise
(``exercise="unknown"``), except where ``hint_classes`` name a class's catalog hint (jump
rope, jumping jacks). Per class and overall: sets, exact share, +-1 share, mean absolute
error (reps) and mean relative error. Protocol: the counter's ratios were chosen on CaRa
P1-P3 (``TUNE``); figures are reported separately for P4-P6 (``CHECK``) and for muvr, which
nothing was tuned on.

Run: ``python -m inference.lab evaluate-counter [--data ROOT] [--json PATH]``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.io import Recording, read_recording

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
TUNE = ("P1", "P2", "P3")
CHECK = ("P4", "P5", "P6")
#: CaRa classes that have a catalog hint the app would send.
HINTS = {"Skippingrope": "jump_rope", "Jumpingjack": "jumping_jack"}

_CARA_COUNT = re.compile(r"_(\d+)\.csv$")
_MUVR_COUNT = re.compile(r"^(.*)_\d+_reps(\d+)\.csv$")

Counter = Callable[[Recording, str], int]


@dataclass(frozen=True)
class LabelledSet:
    dataset: str  # "cara" | "muvr"
    label: str  # class or exercise
    subject: str  # participant (muvr: "muvr")
    path: Path
    fmt: str
    true: int


def labelled_sets(data: Path = DEFAULT_DATA) -> Iterator[LabelledSet]:
    """Every labelled set under ``data`` (CaRa, then muvr), in a stable order."""
    for path in sorted((data / "cara").glob("*/P*/session-*/*.csv")):
        match = _CARA_COUNT.search(path.name)
        if match:
            yield LabelledSet("cara", path.parts[-4], path.parts[-3], path, "cara", int(match.group(1)))
    for path in sorted((data / "muvr").glob("*/*.csv")):
        match = _MUVR_COUNT.match(path.name)
        if match:
            yield LabelledSet("muvr", match.group(1), "muvr", path, "csv", int(match.group(2)))


def summarise(rows: list[dict]) -> dict:
    """``{"sets", "exact", "within1", "mae", "mre"}`` of rows with ``true`` and ``pred``."""
    if not rows:
        return {"sets": 0, "exact": None, "within1": None, "mae": None, "mre": None}
    err = np.array([r["pred"] - r["true"] for r in rows], dtype=float)
    true = np.array([max(r["true"], 1) for r in rows], dtype=float)
    return {
        "sets": len(rows),
        "exact": float(np.mean(err == 0)),
        "within1": float(np.mean(np.abs(err) <= 1)),
        "mae": float(np.mean(np.abs(err))),
        "mre": float(np.mean(np.abs(err) / true)),
    }


def evaluate(counter: Counter, data: Path = DEFAULT_DATA, *, only: Callable[[LabelledSet], bool] | None = None):
    """Count every labelled set; returns ``(rows, report)``.

    ``report`` holds ``overall`` summaries for the groups ``cara_tune`` (P1-P3),
    ``cara_check`` (P4-P6), ``muvr`` and ``all``, and ``per_class`` summaries (check split
    for CaRa, all of muvr).
    """
    rows = []
    for item in labelled_sets(data):
        if only is not None and not only(item):
            continue
        recording = read_recording(item.path, item.fmt)
        hint = HINTS.get(item.label, "unknown") if item.dataset == "cara" else "unknown"
        rows.append(
            {
                "dataset": item.dataset,
                "label": item.label,
                "subject": item.subject,
                "file": str(item.path.relative_to(data)),
                "true": item.true,
                "pred": int(counter(recording, hint)),
            }
        )
    groups = {
        "cara_tune": [r for r in rows if r["dataset"] == "cara" and r["subject"] in TUNE],
        "cara_check": [r for r in rows if r["dataset"] == "cara" and r["subject"] in CHECK],
        "muvr": [r for r in rows if r["dataset"] == "muvr"],
        "all": rows,
    }
    per_class: dict[str, list[dict]] = defaultdict(list)
    for r in groups["cara_check"] + groups["muvr"]:
        per_class[f"{r['dataset']}/{r['label']}"].append(r)
    report = {
        "overall": {name: summarise(g) for name, g in groups.items()},
        "per_class": {name: summarise(g) for name, g in sorted(per_class.items())},
    }
    return rows, report


def production_counter(recording: Recording, hint: str) -> int:
    """The serving path's generic counter, as the pipeline calls it for a hint it does not classify."""
    from inference.pipeline import count_recording

    return count_recording(recording, model=None, exercise=hint).total_reps


#: Header of a Markdown table of :func:`summarise` rows (:func:`table_line`).
TABLE_HEAD = "| group | sets | exact | +-1 | MAE (reps) | MRE |\n|---|---|---|---|---|---|"


def table_line(name: str, s: dict) -> str:
    """One Markdown table row of a :func:`summarise` summary."""
    if not s["sets"]:
        return f"| {name} | 0 | | | | |"
    return f"| {name} | {s['sets']} | {s['exact']:.0%} | {s['within1']:.0%} | {s['mae']:.2f} | {s['mre']:.0%} |"


def markdown(report: dict) -> str:
    line, head = table_line, TABLE_HEAD
    out = [head, *(line(k, v) for k, v in report["overall"].items()), "", head]
    out += [line(k, v) for k, v in report["per_class"].items()]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m inference.lab evaluate-counter", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, help="also write rows and report here")
    args = parser.parse_args(argv)
    if not (args.data / "cara").is_dir() and not (args.data / "muvr").is_dir():
        print(f"no CaRa or muvr data under {args.data}")  # noqa: T201
        return 2
    rows, report = evaluate(production_counter, args.data)
    print(markdown(report))  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "report": report}, indent=1))
    return 0
