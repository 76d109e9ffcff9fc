"""The learned counter against the generic counter on the same hour, in the same run (issue 28).

An hour of 50 Hz six-channel watch data (accelerometer and gyroscope, 180,000 samples) is built
from real CaRa session-2 recordings (bursts of repetitions, pauses and other movement)
resampled to 50 Hz and joined end to end. Each counter counts it warm, median of ``--repeats``:

- ``generic``: :func:`inference.generic.count_generic` (issue 20);
- ``learned``: :meth:`inference.density.DensityCounter.count` (the network and its sets);
- ``hybrid``: the generic sets re-counted by the density (:meth:`~DensityCounter.count_in_sets`),
  which includes the generic counter's own time.

Goal: the learned counter's hour in at most 2x the generic counter's. The peak RSS of a fresh
process that imports the pipeline, loads the counter and counts the hour is measured in a child
(goal: a worker stays under 350 MiB), then again after the generic counter counted the same hour.
Parsing is not included in either.

Run: ``python bench/counter_bench.py [--repeats N]``; merges key ``counter`` into results.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import benchlib

benchlib.setup_path()

CARA = (benchlib.ROOT / ".." / "shared" / "data" / "cara").resolve()
RATE_HZ = 50.0
HOUR_S = 3600.0
GOAL_RATIO = 2.0
GOAL_RSS_MIB = 350


def hour_recording():
    """One hour at 50 Hz (acc m/s^2 + gyro rad/s) from CaRa session-2 files, in a stable order."""
    import numpy as np

    from inference.io import Recording, read_recording
    from inference.preprocessing import resample

    parts, total = [], 0.0
    files = sorted(CARA.glob("*/P*/session-2/*.csv"))
    for path in files:
        rec = read_recording(path, "cara")
        _, x = resample(rec.time_s, rec.samples, RATE_HZ)
        parts.append(x)
        total += x.shape[0] / RATE_HZ
        if total >= HOUR_S:
            break
    samples = np.concatenate(parts)[: int(HOUR_S * RATE_HZ)]
    t = np.arange(samples.shape[0]) / RATE_HZ
    return Recording(time_s=t, samples=samples.astype(np.float32), channels=rec.channels, source_format="csv")


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], out


def child_rss() -> dict:
    """Peak RSS (MiB) of a fresh process: after importing the pipeline and loading the counter,
    after building the hour (reading CaRa files), after the learned counter counted it, and after
    the generic counter counted it too."""
    code = (
        "import sys; sys.path.insert(0, 'bench'); import counter_bench as b;"
        # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec
        "peak = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024;"
        "import inference.pipeline; from inference.density import default_counter;"
        "from inference.generic import count_generic; c = default_counter(); p0 = peak();"
        "rec = b.hour_recording(); p1 = peak(); n = sum(s.reps for s in c.count(rec)); p2 = peak();"
        "count_generic(rec); print(p0, p1, p2, peak(), n)"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=benchlib.ROOT, timeout=600, check=True
    )
    loaded, data, learned, generic, reps = out.stdout.split()
    return {
        "peak_rss_mib_loaded": round(float(loaded), 1),
        "peak_rss_mib_hour_built": round(float(data), 1),
        "peak_rss_mib": round(float(learned), 1),
        "peak_rss_mib_after_generic": round(float(generic), 1),
        "reps": int(reps),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from inference.density import default_counter
    from inference.generic import count_generic

    if not CARA.is_dir():
        benchlib.log(f"skipped: no CaRa data at {CARA}")
        return benchlib.SKIPPED
    counter = default_counter()
    if counter is None:
        benchlib.log("skipped: no shipped counter (inference/models/counter.onnx)")
        return benchlib.SKIPPED
    rec = hour_recording()
    benchlib.log(f"hour: {rec.n_samples} samples x {len(rec.channels)} channels at {RATE_HZ:g} Hz")
    counter.count(rec)  # warm: ONNX Runtime's first run allocates
    t_generic, generic_sets = median_time(lambda: count_generic(rec), args.repeats)
    t_learned, learned_sets = median_time(lambda: counter.count(rec), args.repeats)
    t_hybrid, hybrid_sets = median_time(lambda: counter.count_in_sets(rec, count_generic(rec)), args.repeats)
    rss = child_rss()
    payload = {
        "measured_at": benchlib.now_iso(),
        "machine": benchlib.machine(),
        "counter_version": counter.spec.version,
        "samples": rec.n_samples,
        "channels": list(rec.channels),
        "rate_hz": RATE_HZ,
        "repeats": args.repeats,
        "generic_s": round(t_generic, 3),
        "learned_s": round(t_learned, 3),
        "hybrid_s": round(t_hybrid, 3),
        "learned_ratio": round(t_learned / t_generic, 2),
        "hybrid_ratio": round(t_hybrid / t_generic, 2),
        "goal_ratio": GOAL_RATIO,
        "goal_met": max(t_learned, t_hybrid) / t_generic <= GOAL_RATIO,
        "reps": {
            "generic": sum(s.reps for s in generic_sets),
            "learned": sum(s.reps for s in learned_sets),
            "hybrid": sum(s.reps for s in hybrid_sets),
        },
        "child": {**rss, "goal_rss_mib": GOAL_RSS_MIB, "goal_met": rss["peak_rss_mib"] <= GOAL_RSS_MIB},
    }
    benchlib.write_results("counter", payload)
    print(json.dumps(payload, indent=1))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
