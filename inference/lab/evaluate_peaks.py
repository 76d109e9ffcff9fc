"""Evaluate :func:`inference.peaks.count_peaks` on the CaRa recordings.

CaRa (Nguyen et al., TPAMI 2025; ``../shared/data/cara/README.md``) files are
``<class>/<participant>/session-<k>/<start-ms>_<participant>_<class>_<count>.csv``;
the true count is the last number of the name. The parameters of the counter were
chosen on the ``tune`` participants and are checked on the ``check`` ones.

Run: ``python -m inference.lab evaluate-peaks [--data ROOT]`` (prints a Markdown table).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from inference.io import read_recording
from inference.peaks import count_peaks

#: CaRa folder name -> exercise name passed to the counter.
CARA_CLASSES = {"Skippingrope": "jump_rope", "Jumpingjack": "jumping_jack"}
#: Participants the parameters were chosen on, and those kept to check them.
SPLITS = {"tune": ("P1", "P2", "P3"), "check": ("P4", "P5", "P6")}
DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "cara"

_COUNT = re.compile(r"_(\d+)\.csv$")


def _summary(rows: list[dict]) -> dict:
    """Mean relative error and +-1 shares of per-file rows (None when there are no rows)."""
    if not rows:
        return {"files": 0, "mean_rel_error": None, "session1_within1": None, "all_within1": None}
    s1 = [r["within1"] for r in rows if r["session"] == "session-1"]
    return {
        "files": len(rows),
        "mean_rel_error": float(np.mean([r["rel_error"] for r in rows])),
        "session1_within1": float(np.mean(s1)) if s1 else None,
        "all_within1": float(np.mean([r["within1"] for r in rows])),
    }


def evaluate_cara(root: Path, participants: list[str] | None = None) -> dict:
    """Count every CaRa file under ``root`` and compare with the count in its name.

    Args:
        root: the ``cara`` folder (``Skippingrope/``, ``Jumpingjack/``).
        participants: only these participants (e.g. ``["P4"]``); all when None.

    Returns:
        ``{exercise: {"rows": [...], "splits": {"tune"|"check"|"all": summary}}}``
        where a row is ``{"file", "participant", "session", "true", "pred",
        "sets", "rel_error", "within1"}`` and a summary holds ``files``,
        ``mean_rel_error`` (mean of |pred - true| / true), ``session1_within1``
        and ``all_within1`` (share of files with |pred - true| <= 1).

    Raises:
        FileNotFoundError: ``root`` does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CaRa folder not found: {root}")
    out: dict = {}
    for folder, exercise in CARA_CLASSES.items():
        rows = []
        for path in sorted((root / folder).glob("P*/session-*/*.csv")):
            participant, session = path.parts[-3], path.parts[-2]
            if participants is not None and participant not in participants:
                continue
            match = _COUNT.search(path.name)
            if match is None:
                continue
            true = int(match.group(1))
            sets = count_peaks(read_recording(path, "cara"), exercise=exercise)
            pred = sum(s.reps for s in sets)
            rows.append(
                {
                    "file": str(path.relative_to(root)),
                    "participant": participant,
                    "session": session,
                    "true": true,
                    "pred": pred,
                    "sets": [s.reps for s in sets],
                    "rel_error": abs(pred - true) / true,
                    "within1": abs(pred - true) <= 1,
                }
            )
        splits = {name: _summary([r for r in rows if r["participant"] in ps]) for name, ps in SPLITS.items()}
        splits["all"] = _summary(rows)
        out[exercise] = {"rows": rows, "splits": splits}
    return out


def _fmt(v: float | None, pct: bool = True) -> str:
    return "-" if v is None else (f"{100 * v:.1f} %" if pct else f"{v}")


def to_markdown(result: dict) -> str:
    """Markdown summary table and per-file table of :func:`evaluate_cara`'s result."""
    lines = [
        "| exercise | split | files | mean rel. error | session-1 within +-1 | all within +-1 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for exercise, res in result.items():
        for split, s in res["splits"].items():
            lines.append(
                f"| {exercise} | {split} | {s['files']} | {_fmt(s['mean_rel_error'])} "
                f"| {_fmt(s['session1_within1'])} | {_fmt(s['all_within1'])} |"
            )
    lines += ["", "| exercise | file | true | pred | sets |", "| --- | --- | --- | --- | --- |"]
    for exercise, res in result.items():
        for r in res["rows"]:
            lines.append(f"| {exercise} | {r['file']} | {r['true']} | {r['pred']} | {r['sets']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown evaluation; ``argv``: optional ``[ROOT [PARTICIPANT ...]]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    root = Path(args[0]) if args else DEFAULT_ROOT
    participants = args[1:] or None
    try:
        result = evaluate_cara(root, participants)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)  # noqa: T201 - CLI output
        return 2
    print(to_markdown(result))  # noqa: T201 - CLI output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
