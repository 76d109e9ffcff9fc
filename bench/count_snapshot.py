"""The CLI's counts on the shared recordings, written once and checked after a change.

Runs ``python -m inference count`` (the contract in architecture.md) on every Exermote
recording (no hint) and every CaRa jump-rope and jumping-jack recording (with its hint and
as ``unknown``), and keeps each file's total and sets (exercise, reps, method, start and end
rounded to 0.1 s). ``--write`` stores them; ``--check`` (the default) compares and exits 1
on any difference, printing it. Data: ``../shared/data``; without it, exit 0 with a notice.

    .venv/bin/python bench/count_snapshot.py --check bench/counts.json
    .venv/bin/python bench/count_snapshot.py --write bench/counts.json   # after an intended change
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SNAPSHOT = ROOT / "bench" / "counts.json"
CARA_CLASSES = {"Skippingrope": "jump_rope", "Jumpingjack": "jumping_jack"}


def groups(data: Path) -> list[tuple[str, str, str | None, list[Path]]]:
    """``(name, format, hint, files)`` for every group of recordings that is present."""
    out = []
    exermote = sorted((data / "exermote").glob("*.csv"))
    if exermote:
        out.append(("exermote", "exermote", None, exermote))
    for folder, hint in CARA_CLASSES.items():
        files = sorted((data / "cara" / folder).rglob("*.csv"))
        if files:
            out += [(f"{folder}:{hint}", "cara", hint, files), (f"{folder}:unknown", "cara", "unknown", files)]
    return out


def count(fmt: str, hint: str | None, files: list[Path], python: str = sys.executable) -> dict[str, dict]:
    """The CLI's JSON line per file, reduced to what must not change, keyed by the file's name."""
    cmd = [python, "-m", "inference", "count", "--format", fmt]
    if hint:
        cmd += ["--exercise", hint]
    done = subprocess.run([*cmd, *map(str, files)], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    out = {}
    for line in done.stdout.splitlines():
        row = json.loads(line)
        out[Path(row["file"]).name] = {
            "total_reps": row["total_reps"],
            "model_version": row["model_version"],
            "error": row.get("error"),
            "sets": [
                [s["exercise"], s["reps"], s["method"], round(s["start_s"], 1), round(s["end_s"], 1)]
                for s in row["sets"]
            ],
        }
    if len(out) != len(files):
        raise RuntimeError(f"count printed {len(out)} lines for {len(files)} files: {done.stderr[-2000:]}")
    return out


def snapshot(data: Path = DATA) -> dict[str, dict]:
    return {name: count(fmt, hint, files) for name, fmt, hint, files in groups(data)}


def differences(expected: dict, actual: dict) -> list[str]:
    """One line per group or file whose counts differ."""
    lines = []
    for group in sorted(set(expected) | set(actual)):
        want, got = expected.get(group), actual.get(group)
        if want is None or got is None:
            lines.append(f"{group}: {'not in the snapshot' if want is None else 'not counted now'}")
            continue
        lines += [
            f"{group} {name}: {want.get(name)} -> {got.get(name)}"
            for name in sorted(set(want) | set(got))
            if want.get(name) != got.get(name)
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", metavar="JSON", type=Path, help="store the counts here")
    mode.add_argument("--check", metavar="JSON", type=Path, help=f"compare with these (default {SNAPSHOT.name})")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if not groups(args.data):
        print(f"count_snapshot: no recordings under {args.data}; nothing to compare")  # noqa: T201
        return 0
    actual = snapshot(args.data)
    if args.write:
        args.write.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
        print(f"count_snapshot: {sum(map(len, actual.values()))} counts written to {args.write}")  # noqa: T201
        return 0
    expected = json.loads((args.check or SNAPSHOT).read_text())
    lines = differences(expected, actual)
    for line in lines:
        print(line)  # noqa: T201
    n = sum(map(len, actual.values()))
    print(f"count_snapshot: {n} counts, {len(lines)} differ")  # noqa: T201
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
