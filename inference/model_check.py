"""The checks of a model file that build its network, run in a child process under a memory limit.

A learned counter (an ``.onnx`` with a :class:`~inference.density.CounterSpec`, named ``*.onnx``
for the child) is checked by :func:`check_counter`: it loads in ONNX Runtime and counts a
synthetic recording to a finite, non-negative count; it has no export.

Loading a ``.keras`` builds its network (TensorFlow allocates every weight), runs it on a zero
window and counts a short synthetic recording; exporting converts it to ``.onnx``. A file that
slips past the static bounds (:mod:`inference.spec`, :mod:`inference.network_size`) could still
ask for gigabytes: so :func:`run_model_check` runs these steps in a fresh interpreter
(``python -m inference.model_check``) whose address space is capped with ``RLIMIT_AS`` before
anything is imported. A check that runs out of memory, crashes (a segfault) or is killed is
reported as :class:`~inference.model.ModelFileError` with the reason; the caller's memory
does not grow (it never imports TensorFlow for the check).

The child reads and writes files in a folder the caller owns; it answers in JSON (never
pickle: the child runs the uploaded file's network).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.model import ModelFileError

#: What the child writes its answer to, in the folder it is given.
RESULT_FILE = "result.json"
#: What the child writes once the file passed every check before the export (load, dry run, count).
CHECKED_FILE = "checked.json"
STDERR_FILE = "stderr.txt"
_ROOT = Path(__file__).resolve().parents[1]
#: Words of TensorFlow's, NumPy's or the C++ runtime's errors that mean an allocation failed.
_MEMORY_WORDS = ("MemoryError", "OOM when allocating", "ResourceExhausted", "bad_alloc", "Cannot allocate memory")


class ExportFailedError(ModelFileError):
    """The file passed its checks (it loads, dry-runs and counts); only its export (made or given)
    failed: the ``.keras`` itself is usable."""


@dataclass(frozen=True)
class CheckedFile:
    """What the child found: the export's record (:mod:`inference.export`; empty without one)."""

    export_record: dict
    seconds: float


def run_model_check(
    model_path: Path,
    *,
    memory_limit_mb: int,
    timeout_s: float,
    runtime_path: Path | None = None,
    export_path: Path | None = None,
) -> CheckedFile:
    """Load ``model_path`` (``.keras``), dry-run it and count a synthetic recording in a child process.

    With ``runtime_path`` (its ``.onnx`` export, whose record names the ``.keras``) the export is
    checked against Keras too; with ``export_path`` the export is made and written there.

    Args:
        memory_limit_mb: the child's address space (MiB, ``RLIMIT_AS``); TensorFlow with the
            shipped model reaches about 2.7 GiB of address space while exporting.
        timeout_s: wall-clock limit (s) for the child; it is killed after it.

    Raises:
        ExportFailedError: the checks of the ``.keras`` passed, then the export failed (any of the
            reasons below, met while exporting or checking the export).
        ModelFileError: the file fails a check, exceeds the memory limit, crashes the child or
            takes longer than ``timeout_s``; the message says which.
    """
    checked_path = model_path.parent / CHECKED_FILE
    checked_path.unlink(missing_ok=True)
    try:
        return _run_child(
            model_path,
            memory_limit_mb=memory_limit_mb,
            timeout_s=timeout_s,
            runtime_path=runtime_path,
            export_path=export_path,
        )
    except ModelFileError as exc:
        if checked_path.exists() and (runtime_path is not None or export_path is not None):
            raise ExportFailedError(str(exc)) from exc
        raise


def _run_child(
    model_path: Path, *, memory_limit_mb: int, timeout_s: float, runtime_path: Path | None, export_path: Path | None
) -> CheckedFile:
    folder = model_path.parent
    result_path, stderr_path = folder / RESULT_FILE, folder / STDERR_FILE
    result_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "inference.model_check", str(model_path), "--memory-mb", str(memory_limit_mb)]
    if runtime_path is not None:
        command += ["--runtime", str(runtime_path)]
    if export_path is not None:
        command += ["--export", str(export_path)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])),
        # One malloc arena per thread reserves 64 MiB of address space each: keep the cap for data.
        "MALLOC_ARENA_MAX": "2",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    started = time.monotonic()
    with stderr_path.open("wb") as stderr:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=folder
        )
        try:
            code = child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise ModelFileError(f"checking the model took longer than {timeout_s:g} s") from None
        except BaseException:  # e.g. the task's soft time limit: the child goes with it
            child.kill()
            child.wait()
            raise
    seconds = time.monotonic() - started
    limit = f"the memory limit of {memory_limit_mb} MiB"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        raise ModelFileError(
            f"checking the model crashed its process ({name}); the network probably exceeds {limit}"
            + _last_line(stderr_path)
        )
    try:
        answer = json.loads(result_path.read_text())
    except (OSError, ValueError):
        tail = _last_line(stderr_path)
        if any(word in tail for word in _MEMORY_WORDS):
            raise ModelFileError(f"the network exceeds {limit}{tail}") from None
        raise ModelFileError(f"checking the model ended without an answer (exit status {code}){tail}") from None
    if not answer.get("ok"):
        error = str(answer.get("error") or "unknown error")
        if answer.get("memory"):
            raise ModelFileError(f"the network exceeds {limit} ({error[:300]})")
        raise ModelFileError(error)
    return CheckedFile(export_record=dict(answer.get("export_record") or {}), seconds=seconds)


def _last_line(path: Path) -> str:
    """``: <the last line of the child's stderr>`` (at most 300 characters), or ``''``."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            lines = [line for line in fh.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f": {lines[-1].strip()[:300]}" if lines else ""


def check_model(
    model_path: Path, *, runtime_path: Path | None = None, export_path: Path | None = None, on_checked=None
) -> dict:
    """The checks themselves (what the child runs): load, dry run, synthetic count, export.
    ``on_checked()`` is called once the ``.keras`` passed, before the export.

    Returns the export's record (``{}`` without an export), with ``max_abs_diff_at_registration``
    for a given export.

    Raises:
        ModelFileError: as :func:`inference.model.load_model`; the export disagrees with Keras
            (:class:`inference.export.ExportError`); the model cannot count a recording.
    """
    if model_path.suffix == ".onnx":  # a learned counter: no .keras, no export
        check_counter(model_path)
        return {}
    from inference.model import load_model

    model = load_model(model_path)
    dry_run_counting(model)
    if on_checked is not None:
        on_checked()
    if runtime_path is None and export_path is None:
        return {}
    from inference.export import check_export, export_model

    if runtime_path is None:
        record = export_model(model_path, export_path, keras_model=model)
        exported = load_model(export_path)
    else:
        from inference.model import read_export_record

        record = read_export_record(runtime_path)
        exported = load_model(runtime_path)
        record = {**record, "max_abs_diff_at_registration": check_export(model, exported)}
    dry_run_counting(exported)
    return record


def dry_run_counting(model) -> None:
    """Count a short synthetic recording with the model's own metadata (scaling, counting).

    Raises:
        ModelFileError: any failure (the file cannot count).
    """
    from inference.io import Recording
    from inference.pipeline import count_with_classifier

    try:
        spec = model.spec
        n = max(3 * spec.window, 10)
        time_s = np.arange(n, dtype=np.float64) / spec.sample_rate_hz
        phase = 2 * np.pi * 0.5 * time_s[:, None] + np.arange(len(spec.channels))[None, :]
        recording = Recording(
            time_s=time_s,
            samples=(0.1 * np.sin(phase)).astype(np.float32),
            channels=spec.channels,
            source_format="csv",
        )
        count_with_classifier(recording, model)
    except Exception as exc:  # any failure here means the file cannot count
        if isinstance(exc, MemoryError):
            raise
        raise ModelFileError(f"the model cannot count a recording with its own metadata: {exc}") from exc


#: The synthetic recording a counter must count: 60 s at 50 Hz of a 0.5 Hz sine on the accelerometer.
COUNTER_CHECK_SECONDS = 60.0
COUNTER_CHECK_RATE_HZ = 50.0
COUNTER_CHECK_CYCLE_HZ = 0.5


def check_counter(path: Path) -> int:
    """Load a learned counter file and count a synthetic recording with it (what the child runs).

    The recording is :data:`COUNTER_CHECK_SECONDS` of a :data:`COUNTER_CHECK_CYCLE_HZ` sine on the
    three accelerometer axes (m/s^2, gravity on z) at :data:`COUNTER_CHECK_RATE_HZ`; the density must
    be finite with one value per grid step, and the count (also with an exemplar of its first
    10 s, 5 repetitions) finite and non-negative. Returns the plain count.

    Raises:
        ModelFileError: the file does not load as a counter, or cannot count the recording.
    """
    from inference.density import DensityCounter, Exemplar
    from inference.io import Recording

    try:
        counter = DensityCounter(path)
        _ = counter.network  # the session starts lazily; a file ONNX Runtime cannot load fails here
    except Exception as exc:
        if isinstance(exc, MemoryError):
            raise
        raise ModelFileError(f"the counter cannot be loaded: {exc}") from exc
    try:
        time_s = np.arange(int(COUNTER_CHECK_SECONDS * COUNTER_CHECK_RATE_HZ)) / COUNTER_CHECK_RATE_HZ
        wave = 3.0 * np.sin(2 * np.pi * COUNTER_CHECK_CYCLE_HZ * time_s[:, None] + np.arange(3)[None, :])
        wave[:, 2] += 9.81
        recording = Recording(
            time_s=time_s, samples=wave.astype(np.float32), channels=("acc_x", "acc_y", "acc_z"), source_format="csv"
        )
        density = counter.density(recording)
        expected = len(np.arange(0.0, COUNTER_CHECK_SECONDS, 1.0 / counter.spec.grid_hz))
        if density.ndim != 1 or abs(density.shape[0] - expected) > 1:
            raise ValueError(f"the density has shape {density.shape}; expected ({expected},), one value per grid step")
        if not np.all(np.isfinite(density)):
            raise ValueError("the density is not finite")
        counts = []
        for exemplar in (None, Exemplar.from_range(recording, 0.0, 10.0, 5)):
            sets = counter.count(recording, exercise="unknown", exemplar=exemplar)
            reps = sum(len(s.repetitions) for s in sets)
            times = [t for s in sets for r in s.repetitions for t in (r.start_s, r.end_s)]
            if reps < 0 or not all(np.isfinite(times)):
                raise ValueError(f"the count is not a finite, non-negative number of repetitions ({reps})")
            counts.append(reps)
    except Exception as exc:
        if isinstance(exc, MemoryError):
            raise
        raise ModelFileError(f"the counter cannot count a synthetic recording: {exc}") from exc
    return counts[0]


def _peak_address_space() -> int:
    """The process's peak address space (bytes, ``VmPeak``; 0 where /proc cannot tell)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _is_memory_error(exc: BaseException, limit: int) -> bool:
    """Whether a failure comes from the memory limit: an allocation error anywhere in the chain, or
    any error once the address space came within 10% of the limit (native code that cannot
    allocate fails in many ways, e.g. "error return without exception set")."""
    if _peak_address_space() >= 0.9 * limit:
        return True
    seen = exc
    while seen is not None:
        if isinstance(seen, MemoryError) or any(word in str(seen) for word in _MEMORY_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    """``python -m inference.model_check MODEL --memory-mb N [--runtime ONNX | --export ONNX]``."""
    parser = argparse.ArgumentParser(prog="python -m inference.model_check")
    parser.add_argument("model", type=Path)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--runtime", type=Path)
    parser.add_argument("--export", type=Path)
    args = parser.parse_args(argv)
    import resource

    limit = args.memory_mb << 20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)  # a process may lower its hard limit, never raise it
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        record = check_model(
            args.model,
            runtime_path=args.runtime,
            export_path=args.export,
            on_checked=lambda: (args.model.parent / CHECKED_FILE).write_text("{}"),
        )
        answer = {"ok": True, "export_record": record}
    except BaseException as exc:  # noqa: BLE001 - every failure is an answer for the parent
        answer = {"ok": False, "error": str(exc)[:2000] or type(exc).__name__, "memory": _is_memory_error(exc, limit)}
    (args.model.parent / RESULT_FILE).write_text(json.dumps(answer, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
