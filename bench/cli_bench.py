"""Cold command-line counts: a fresh ``python -m inference count`` process per run.

    .venv/bin/python bench/cli_bench.py [--repeats 5] [--no-write]

Two files, each counted by a new interpreter (imports, model load, parse, count, JSON out),
as a user or a one-off job would run it:

- ``classifier``: one 5-minute Exermote recording (iPhone, 10 Hz), counted by the shipped
  model through the serving runtime;
- ``generic``: one CaRa skipping-rope recording (watch, about 100 Hz) with ``--exercise
  jump_rope``, counted without the model.

Wall time is the child's, from start to exit; peak memory is its ``ru_maxrss`` (resident
set high-water mark) from ``os.wait4``. The best run and the median are kept (noise on a
shared machine only adds time). Whether each run imported TensorFlow or ONNX Runtime is
checked from ``sys.modules`` at exit. Results go to ``bench/results.json`` under ``"cli"``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchlib
from benchlib import log

CARA_DIR = (benchlib.ROOT / ".." / "shared" / "data" / "cara").resolve()
#: Goals of issue 23: (wall s, peak MB) per case.
GOALS = {"classifier": (1.5, 300.0), "generic": (1.0, 200.0)}
#: Run inside the child after the count: which heavy runtimes it imported.
PROBE = (
    "import runpy, sys, json\n"
    "sys.argv = ['inference'] + sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module('inference', run_name='__main__')\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "else:\n"
    "    code = 0\n"
    "mods = {m: m in sys.modules for m in ('tensorflow', 'keras', 'onnxruntime')}\n"
    "print('MODULES ' + json.dumps(mods), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def cases() -> dict[str, list[str]] | None:
    files = benchlib.require_exermote(1)
    ropes = sorted(CARA_DIR.glob("Skippingrope/P1/*/*.csv"))
    if files is None or not ropes:
        if not ropes:
            log(f"SKIPPED: needs CaRa skipping-rope recordings in {CARA_DIR} (shared data absent)")
        return None
    return {
        "classifier": ["count", str(files[0])],
        "generic": ["count", "--format", "cara", "--exercise", "jump_rope", str(ropes[-1])],
    }


def run_once(argv: list[str]) -> dict:
    """One fresh interpreter: wall s, peak MB, and the runtimes it imported.

    Call it in a process with no other children (:func:`run_isolated`): the peak is
    ``RUSAGE_CHILDREN``'s ``ru_maxrss``, the high-water mark over this process' children.
    """
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", PROBE, *argv],
        cwd=benchlib.ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr[-2000:]}")
    modules = {}
    for line in done.stderr.splitlines():
        if line.startswith("MODULES "):
            modules = json.loads(line[len("MODULES ") :])
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall_s": wall, "peak_mb": peak_kb / 1024, "modules": modules}


def measure(repeats: int) -> dict | None:
    todo = cases()
    if todo is None:
        return None
    out = {}
    for name, argv in todo.items():
        runs = []
        for i in range(repeats):
            runs.append(run_isolated(argv))
            log(f"  {name} run {i + 1}: {runs[-1]['wall_s']:.2f} s, {runs[-1]['peak_mb']:.0f} MB")
        walls = [r["wall_s"] for r in runs]
        peaks = [r["peak_mb"] for r in runs]
        goal_s, goal_mb = GOALS[name]
        out[name] = {
            "argv": [Path(a).name if os.sep in a else a for a in argv],
            "wall_s_best": round(min(walls), 3),
            "wall_s_median": round(statistics.median(walls), 3),
            "peak_mb_max": round(max(peaks), 1),
            "imported": runs[0]["modules"],
            "goal_wall_s": goal_s,
            "goal_peak_mb": goal_mb,
            "goal_met": min(walls) <= goal_s and max(peaks) <= goal_mb,
        }
    return out


def run_isolated(argv: list[str]) -> dict:
    """:func:`run_once` in a wrapper process of its own, so that the peak is this run's alone."""
    here = str(Path(__file__).parent)
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import cli_bench; "
        "print(json.dumps(cli_bench.run_once(json.loads(sys.argv[1]))))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_report(p: dict) -> None:
    for name, r in p["cases"].items():
        goal = "ok" if r["goal_met"] else "MISS"
        imported = ", ".join(m for m, yes in r["imported"].items() if yes) or "neither TensorFlow nor ONNX Runtime"
        print(  # noqa: T201 - the benchmark's report
            f"cold CLI {name} ({' '.join(r['argv'])}): best {r['wall_s_best']:.2f} s "
            f"(median {r['wall_s_median']:.2f} s), peak {r['peak_mb_max']:.0f} MB; goal <= {r['goal_wall_s']} s "
            f"and {r['goal_peak_mb']:.0f} MB: {goal}; imported: {imported}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    benchlib.exit_on_sigterm()
    measured = measure(args.repeats)
    if measured is None:
        return benchlib.SKIPPED
    payload = {"measured_at": benchlib.now_iso(), "machine": benchlib.machine(), "cases": measured}
    print_report(payload)
    if not args.no_write:
        benchlib.write_results("cli", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
