"""Counting an hour of data against the bare Keras ``predict`` over its windows.

    .venv/bin/python bench/inference_bench.py [--repeats 7] [--no-write]

A 1-hour 10 Hz session (36,000 samples) is built from twelve real 5-minute Exermote
recordings played back to back (``benchlib.exermote_session``). Inside one warm process
(model loaded, every code path run once) it measures:

- end to end: ``inference.io.read_recording`` (parse the CSV) and
  ``inference.pipeline.count_recording`` with the default model (resample, classify,
  decode, count), i.e. what a worker does with an uploaded file;
- the naive approach beside it: ``inference.model.build_network(40, 12, 4)`` (the
  Exermote architecture, untrained) and ``model.predict(windows)`` with Keras defaults
  over one 40 x 12 window per sample of the same hour; also with ``batch_size=1024``,
  and a loop of single-window ``predict`` calls, extrapolated to the hour;
- the end-to-end time by stage (parse, resample, network, decode, count);
- how the end-to-end time grows with session length (1, 5, 15, 60 minutes);
- what the network stage would cost when called differently (same inputs, same
  network): diagnostics for speed-ups, not part of the pipeline.

Runs are interleaved (end to end, then the baseline, repeated) and the best round of
each side is compared (medians beside), so that the ratios compare like with like on a
shared machine, where noise only ever adds time. Results go to
``bench/results.json`` under ``"inference"``; the model measured is whatever
``inference/models/default.onnx`` is, run by the serving runtime (its version is recorded).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import sys
import time
from pathlib import Path

import benchlib
from benchlib import log

HOUR_ROWS = 36_000
#: Issue 23: end to end at most half the bare Keras predict with ``batch_size=1024``.
GOAL_RATIO = 0.5
SCALING_MINUTES = (1, 5, 15, 60)
#: Columns the Exermote reader needs (device motion, time, labels, athlete).
EXERMOTE_NEEDED_PREFIXES = ("Device: ", "timeStampSaved", "exerciseType", "exerciseSubType", "individual")


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - started, out


def med(values: list[float]) -> float:
    return statistics.median(values)


def r3(x: float) -> float:
    return round(x, 3)


def end_to_end(raw: bytes, model) -> tuple[float, object]:
    """Seconds to parse and count one Exermote upload, and the CountResult."""
    from inference.io import read_recording
    from inference.pipeline import count_recording

    started = time.perf_counter()
    result = count_recording(read_recording(raw, "exermote"), model=model)
    return time.perf_counter() - started, result


def stages(raw: bytes, model) -> dict[str, float]:
    """Seconds per stage of the pipeline for one upload (the stages ``count_recording`` runs)."""
    from inference.counting import CountingParams, count_phases, phases_from_probabilities
    from inference.cycles import extend_sets, gravity_columns
    from inference.io import read_recording
    from inference.pipeline import classify
    from inference.preprocessing import Scaler, model_input

    meta = model.spec.to_dict()
    t_parse, rec = timed(read_recording, raw, "exermote")
    # Resample + channel selection + scaling alone (what classify does before the network).
    started = time.perf_counter()
    _, x = model_input(
        rec,
        model.spec.channels,
        float(meta["sample_rate_hz"]),
        angle_encoding=meta.get("angle_encoding", "raw"),
        derived=model.spec.derived_channels,
    )
    Scaler.from_dict(meta["scaling"]).transform(x)
    t_resample = time.perf_counter() - started
    t_classify, (rate, probs) = timed(classify, rec, model)
    params = CountingParams.from_dict(meta["counting"])
    t_decode, phases = timed(phases_from_probabilities, probs, model.spec.labels, rate, params)
    t_count, sets = timed(count_phases, phases, model.spec.labels, rate, params)
    gravity = gravity_columns(x, model.spec.channels)
    t_extend = 0.0
    if gravity is not None:
        t_extend, _ = timed(extend_sets, sets, gravity, rate, params.cycle_match)
    return {
        "parse": t_parse,
        "resample": t_resample,
        "network": max(t_classify - t_resample, 0.0),
        "decode": t_decode,
        "count": t_count,
        "extend": t_extend,
    }


def baseline_windows(raw: bytes):
    """One 40 x 12 window per sample of the hour (the 12 Exermote channels as recorded), contiguous."""
    import numpy as np

    from inference.io import EXERMOTE_CHANNELS, read_recording
    from inference.preprocessing import windows

    rec = read_recording(raw, "exermote")
    return np.ascontiguousarray(windows(rec.select(EXERMOTE_CHANNELS), 40, 20), dtype=np.float32)


def scaled_input(model, raw: bytes):
    """The scaled (m, c) array the pipeline hands to ``PhaseModel.phase_probabilities``."""
    from inference.io import read_recording
    from inference.preprocessing import Scaler, model_input

    meta = model.spec.to_dict()
    rec = read_recording(raw, "exermote")
    rate = float(meta["sample_rate_hz"])
    _, x = model_input(
        rec,
        model.spec.channels,
        rate,
        angle_encoding=meta.get("angle_encoding", "raw"),
        derived=model.spec.derived_channels,
    )
    return Scaler.from_dict(meta["scaling"]).transform(x)


def network_inputs(model, x) -> list:
    """The arrays ``phase_probabilities`` passes to the network (captured, not re-derived).

    Falls back to one window per sample for a windowed model whose network is not called
    directly with arrays; empty for a sequence model then.
    """
    import numpy as np

    from inference.preprocessing import windows

    captured = []

    class Recorder:
        def __init__(self, network) -> None:
            self.network = network

        def __call__(self, batch, **kwargs):
            captured.append(batch)
            return self.network(batch, **kwargs)

        def __getattr__(self, name):
            return getattr(self.network, name)

    dataclasses.replace(model, network=Recorder(model.network)).phase_probabilities(x)
    arrays = []
    for batch in captured:
        try:
            arrays.append(np.asarray(batch))
        except (TypeError, ValueError, NotImplementedError):  # a symbolic tensor inside a traced function
            arrays = []
            break
    if not arrays and not model.spec.is_sequence:
        meta = model.spec.to_dict()
        arrays = [np.ascontiguousarray(windows(x, int(meta["window"]), int(meta["label_offset"])))]
    return [a for a in arrays if a.dtype != object]


def network_alternatives(model, raw: bytes, repeats: int) -> dict:
    """The network stage called differently on the same inputs: what the pipeline does now
    (the serving runtime), and the same model's ``.keras`` through TensorFlow (``tf.function``,
    as serving did before the export); for a Keras model also eager ``network(x)`` and ``predict``."""
    import numpy as np

    from inference.model import DEFAULT_KERAS_PATH, load_model
    from inference.runtime import OnnxNetwork

    x = scaled_input(model, raw)
    ways = {"pipeline now: PhaseModel.phase_probabilities": lambda: model.phase_probabilities(x)}
    keras_model = model
    if isinstance(model.network, OnnxNetwork):
        keras_model = load_model(DEFAULT_KERAS_PATH)
        ways["the .keras source through TensorFlow (tf.function)"] = lambda: keras_model.phase_probabilities(x)
    inputs = network_inputs(keras_model, x)
    if inputs and not isinstance(model.network, OnnxNetwork):
        import tensorflow as tf

        net = model.network
        big = np.concatenate(inputs) if len(inputs) > 1 else inputs[0]
        compiled = tf.function(lambda b: net(b, training=False), reduce_retracing=True)
        ways |= {
            "eager network(x) per batch": lambda: [np.asarray(net(b, training=False)) for b in inputs],
            "tf.function, one batch": lambda: compiled(big).numpy(),
            "keras predict, batch 1024": lambda: net.predict(big, batch_size=1024, verbose=0),
        }
    out = {}
    for name, fn in ways.items():
        fn()  # trace / warm up
        t = min(timed(fn)[0] for _ in range(repeats))
        out[name] = {"s": r3(t), "samples_per_s": round(len(x) / t)}
        log(f"  network, {name}: {t:.3f} s")
    return {"samples": len(x), "ways": out}


def parse_alternatives(raw: bytes, repeats: int) -> dict:
    """Where the CSV parse time goes: pandas over all columns, over the ones the reader uses, and the reader."""
    import pandas as pd

    from inference.io import read_recording

    text = raw.decode()
    header = text.split("\n", 1)[0].split(",")
    needed = [c for c in header if c.startswith(EXERMOTE_NEEDED_PREFIXES)]
    ways = {
        f"read_csv, all {len(header)} columns as str": lambda: pd.read_csv(io.StringIO(text), dtype=str),
        f"read_csv, the {len(needed)} used columns as str": lambda: pd.read_csv(
            io.StringIO(text), dtype=str, usecols=needed
        ),
        f"read_csv, the {len(needed)} used columns, device columns as float64": lambda: pd.read_csv(
            io.StringIO(text),
            usecols=needed,
            dtype={c: ("float64" if c.startswith("Device: ") else str) for c in needed},
        ),
        "read_recording (as the pipeline reads)": lambda: read_recording(raw, "exermote"),
    }
    out = {}
    for name, fn in ways.items():
        fn()
        out[name] = r3(min(timed(fn)[0] for _ in range(repeats)))
        log(f"  parse {name}: {out[name]:.3f} s")
    return {"columns": len(header), "needed_columns": len(needed), "s": out}


def on_all_cores(model, warm_up: bytes):
    """The model with its runtime on every core (``threads=0``), warmed up on ``warm_up``.

    The served runtime runs one thread per worker process (``INFERENCE_THREADS=1``: a host
    runs one process per core); Keras predict takes every core, so this is the like-for-like side.
    """
    from inference.model import DEFAULT_MODEL_PATH
    from inference.runtime import OnnxNetwork

    if not isinstance(model.network, OnnxNetwork):
        return model
    out = dataclasses.replace(model, network=OnnxNetwork(DEFAULT_MODEL_PATH, threads=0))
    end_to_end(warm_up, out)
    return out


def run(args: argparse.Namespace, files: list[Path]) -> dict:
    import keras
    import numpy as np

    from inference.model import build_network
    from inference.pipeline import get_default_model

    machine = benchlib.machine()  # before the benchmark loads the machine itself
    log(f"building a 1-hour session from {HOUR_ROWS // benchlib.SESSION_ROWS} Exermote recordings ...")
    hour = benchlib.exermote_session(files, HOUR_ROWS)
    sessions = {m: benchlib.exermote_session(files, m * 600) for m in SCALING_MINUTES}
    model = get_default_model()
    log(f"model {model.spec.version} ({model.spec.to_dict().get('architecture', 'exermote-cnn-lstm')})")
    windows = baseline_windows(hour)
    naive = build_network(40, 12, 4)

    # Warm process: every path runs once before anything is timed.
    end_to_end(sessions[5], model)
    naive.predict(windows[:2100], verbose=0)
    naive.predict(windows[:4200], batch_size=1024, verbose=0)

    log(f"end to end vs keras predict over {len(windows)} windows, {args.repeats} interleaved rounds ...")
    e2e, predict_default, predict_1024, per_round = [], [], [], []
    result = None
    e2e_all_cores, all_cores = [], on_all_cores(model, sessions[5])
    for _ in range(args.repeats):
        t, result = end_to_end(hour, model)
        e2e.append(t)
        e2e_all_cores.append(end_to_end(hour, all_cores)[0])
        predict_default.append(timed(naive.predict, windows, verbose=0)[0])
        predict_1024.append(timed(naive.predict, windows, batch_size=1024, verbose=0)[0])
        per_round.append(r3(e2e[-1] / predict_default[-1]))
        log(
            f"  end to end {e2e[-1]:.3f} s (all cores {e2e_all_cores[-1]:.3f} s), "
            f"predict (defaults) {predict_default[-1]:.3f} s, batch 1024 {predict_1024[-1]:.3f} s"
        )

    log(f"{args.single} single-window predict calls ...")
    for i in range(5):
        naive.predict(windows[i : i + 1], verbose=0)
    t_single, _ = timed(lambda: [naive.predict(windows[i : i + 1], verbose=0) for i in range(args.single)])
    per_window = t_single / args.single

    log("stages ...")
    stage_runs = [stages(hour, model) for _ in range(min(args.repeats, 5))]
    stage_s = {name: min(s[name] for s in stage_runs) for name in stage_runs[0]}
    stage_total = sum(stage_s.values())

    log("scaling with session length ...")
    # Lengths take turns within each round (so all see the same neighbours), best of the rounds.
    runs = {minutes: [] for minutes in sessions}
    for _ in range(args.repeats):
        for minutes, raw in sessions.items():
            runs[minutes].append(end_to_end(raw, model)[0])
    scaling = {}
    for minutes, times in runs.items():
        t = min(times)
        scaling[f"{minutes} min"] = {
            "samples": minutes * 600,
            "s": r3(t),
            "s_median": r3(med(times)),
            "s_per_minute": round(t / minutes, 4),
        }
        log(f"  {minutes} min: {t:.3f} s ({t / minutes * 1000:.1f} ms per minute of data)")
    per_minute = [v["s_per_minute"] for v in scaling.values()]
    # Least-squares t = fixed + per_minute * minutes: linear when the residuals are small.
    minutes_arr = np.array(SCALING_MINUTES, float)
    times_arr = np.array([v["s"] for v in scaling.values()])
    slope, fixed = np.polyfit(minutes_arr, times_arr, 1)
    linear_fit = {
        "fixed_s": r3(fixed),
        "s_per_minute": round(float(slope), 4),
        "max_abs_residual_s": r3(float(np.abs(times_arr - (fixed + slope * minutes_arr)).max())),
    }

    log("diagnostics: the network stage and the parse called differently ...")
    alternatives = {
        "network": network_alternatives(model, hour, min(args.repeats, 5)),
        "parse": parse_alternatives(hour, min(args.repeats, 5)),
    }

    # Best of the interleaved rounds: on a shared machine, noise only ever adds time.
    t_e2e, t_default, t_1024 = min(e2e), min(predict_default), min(predict_1024)
    n = len(windows)
    return {
        "measured_at": benchlib.now_iso(),
        "machine": {**machine, "keras": keras.__version__, "numpy": np.__version__},
        "model": benchlib.model_info(model),
        "method": f"one warm process; {args.repeats} interleaved rounds (end to end, predict defaults, predict "
        "batch 1024), best of the rounds (medians beside); ratio (goal) = end to end / predict with batch_size=1024; "
        f"stages and diagnostics: best of {min(args.repeats, 5)} runs; scaling: lengths interleaved, best of "
        f"{args.repeats} rounds",
        "session": {
            "minutes": 60,
            "samples": n,
            "csv_bytes": len(hour),
            "format": "exermote",
            "counted": {"sets": len(result.sets), "reps": result.total_reps},
        },
        "end_to_end_s": r3(t_e2e),
        "keras_predict_default_s": r3(t_default),
        "keras_predict_batch_1024_s": r3(t_1024),
        "ratio_end_to_end_vs_keras_predict": r3(t_e2e / t_default),
        "ratio_end_to_end_vs_keras_predict_batch_1024": r3(t_e2e / t_1024),
        "end_to_end_all_cores_s": r3(min(e2e_all_cores)),
        "ratio_end_to_end_all_cores_vs_keras_predict_batch_1024": r3(min(e2e_all_cores) / t_1024),
        "ratio_per_round": per_round,
        "ratio_of_medians": r3(med(e2e) / med(predict_default)),
        "median_s": {
            "end_to_end": r3(med(e2e)),
            "keras_predict_default": r3(med(predict_default)),
            "keras_predict_batch_1024": r3(med(predict_1024)),
        },
        "goal_ratio": GOAL_RATIO,
        "goal_met": t_e2e / t_1024 <= GOAL_RATIO,
        "throughput": {
            "end_to_end_samples_per_s": round(n / t_e2e),
            "keras_predict_default_windows_per_s": round(n / t_default),
            "keras_predict_batch_1024_windows_per_s": round(n / t_1024),
            "single_window_predict_windows_per_s": round(1 / per_window, 1),
        },
        "single_window_predict": {
            "calls": args.single,
            "ms_per_call": round(per_window * 1000, 2),
            "extrapolated_hour_s": round(per_window * n, 1),
            "ratio_vs_end_to_end": round(per_window * n / t_e2e, 1),
        },
        "stages_s": {k: round(v, 4) for k, v in stage_s.items()},
        "stages_share": {k: round(v / stage_total, 3) for k, v in stage_s.items()},
        "stages_total_s": r3(stage_total),
        "scaling": scaling,
        "scaling_ratio_60_vs_1_min_per_minute": r3(per_minute[-1] / per_minute[0]),
        "scaling_ratio_60_vs_5_min_per_minute": r3(per_minute[-1] / per_minute[1]),
        "scaling_ratio_max_vs_min_per_minute": r3(max(per_minute) / min(per_minute)),
        "scaling_linear_fit": linear_fit,
        "alternatives": alternatives,
    }


def print_report(p: dict) -> None:
    st = p["stages_s"]
    lines = [
        f"model {p['model']['version']} ({p['model']['architecture']}), "
        f"{p['session']['samples']} samples (1 h at 10 Hz)",
        f"end to end (parse, resample, classify, count)  {p['end_to_end_s']:>8.3f} s",
        f"keras predict, defaults (batch 32)             {p['keras_predict_default_s']:>8.3f} s",
        f"keras predict, batch 1024                      {p['keras_predict_batch_1024_s']:>8.3f} s",
        f"ratio end to end / predict (defaults)          {p['ratio_end_to_end_vs_keras_predict']:>8.3f}",
        f"ratio end to end / predict (batch 1024)        {p['ratio_end_to_end_vs_keras_predict_batch_1024']:>8.3f}"
        f"  (goal <= {p['goal_ratio']}: {'ok' if p['goal_met'] else 'MISS'})",
        f"end to end, runtime on all cores               {p['end_to_end_all_cores_s']:>8.3f} s, ratio to batch 1024 "
        f"{p['ratio_end_to_end_all_cores_vs_keras_predict_batch_1024']:.3f}",
        f"single-window predict loop (extrapolated)      {p['single_window_predict']['extrapolated_hour_s']:>8.1f} s",
        "stages: " + ", ".join(f"{k} {v:.3f} s ({p['stages_share'][k]:.0%})" for k, v in st.items()),
        "scaling: " + ", ".join(f"{k} {v['s_per_minute'] * 1000:.1f} ms/min" for k, v in p["scaling"].items()),
        f"  fit: {p['scaling_linear_fit']['fixed_s'] * 1000:.0f} ms + "
        f"{p['scaling_linear_fit']['s_per_minute'] * 1000:.1f} ms per minute, largest residual "
        f"{p['scaling_linear_fit']['max_abs_residual_s'] * 1000:.0f} ms",
    ]
    print("\n".join(lines))  # noqa: T201 - the benchmark's report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved timed rounds (best and median reported)")
    parser.add_argument("--single", type=int, default=200, help="single-window predict calls to time")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results.json")
    args = parser.parse_args(argv)
    benchlib.exit_on_sigterm()
    files = benchlib.require_exermote(HOUR_ROWS // benchlib.SESSION_ROWS)
    if files is None:
        return benchlib.SKIPPED
    benchlib.setup_path()
    payload = run(args, files)
    print_report(payload)
    if not args.no_write:
        benchlib.write_results("inference", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
