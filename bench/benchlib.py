"""Shared helpers of the benchmarks in ``bench/`` (not a test module; nothing here is timed).

Every benchmark merges its own key into ``bench/results.json`` and leaves the others'
keys alone; sessions are built from the real Exermote recordings in
``../shared/data/exermote/`` (each file is one 5-minute session at 10 Hz, 3000 rows).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import signal
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results.json"
EXERMOTE_DIR = (ROOT / ".." / "shared" / "data" / "exermote").resolve()
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
#: Rows of one Exermote file: a 5-minute session at 10 Hz.
SESSION_ROWS = 3000
EXERMOTE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S:%f"
#: Exit status of a benchmark that cannot run here (data or servers absent): not a failure.
SKIPPED = 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # noqa: T201 - command-line tools


def exit_on_sigterm() -> None:
    """SIGTERM (``timeout`` in ``make bench``) unwinds like Ctrl-C: servers started are stopped, databases dropped."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def setup_path() -> None:
    """Make the project importable when a script is run as ``python bench/<name>.py``."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --- Statistics -------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 1]."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summary_ms(seconds: Sequence[float]) -> dict:
    """p50/p95/max/mean of durations given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(percentile(ms, 0.95), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


# --- Results ------------------------------------------------------------------------------


def machine() -> dict:
    """The machine, and how busy it was when the benchmark started (it is shared)."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_results(key: str, payload: dict) -> None:
    """Merge ``payload`` into ``bench/results.json`` under ``key``; other keys are kept."""
    existing = {}
    if RESULTS.exists():
        try:
            existing = json.loads(RESULTS.read_text())
        except json.JSONDecodeError:
            log(f"{RESULTS} is not valid JSON; starting it again")
    existing[key] = payload
    RESULTS.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
    log(f"results merged into {RESULTS} under {key!r}")


def model_info(model) -> dict:
    """What identifies the model that was measured (``inference.model.PhaseModel``)."""
    meta = model.spec.to_dict()
    return {
        "version": model.spec.version,
        "architecture": meta.get("architecture", "exermote-cnn-lstm"),
        "checksum": model.checksum[:16],
        "window": meta.get("window"),
        "channels": len(model.spec.channels),  # what an upload carries
        "input_channels": len(model.spec.input_channels),  # what the network reads (channels + derived)
        "labels": len(model.spec.labels),
        "sample_rate_hz": meta.get("sample_rate_hz"),
    }


# --- Sessions from the Exermote recordings --------------------------------------------------


def exermote_files() -> list[Path]:
    return sorted(EXERMOTE_DIR.glob("*.csv")) if EXERMOTE_DIR.is_dir() else []


def require_exermote(minimum: int = 1) -> list[Path] | None:
    """The recordings, or None (with a message saying why the benchmark is skipped)."""
    files = exermote_files()
    if len(files) < minimum:
        log(f"SKIPPED: needs {minimum} Exermote recordings in {EXERMOTE_DIR}, found {len(files)} (shared data absent)")
        return None
    return files


def exermote_session(files: Sequence[Path], rows: int) -> bytes:
    """One Exermote CSV of ``rows`` rows at 10 Hz, made of whole recordings played back to back.

    Each following recording's ``timeStampSaved`` is shifted to start 0.1 s after the
    previous one ends, so the result reads as one continuous session (its set-break and
    label columns are kept, so it is counted like real data). ``rows`` beyond the files'
    total raise ValueError.
    """
    import pandas as pd

    frames, have, next_start = [], 0, None
    for path in files:
        if have >= rows:
            break
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        times = pd.to_datetime(frame["timeStampSaved"], format=EXERMOTE_TIME_FORMAT)
        if next_start is not None:
            times = times + (next_start - times.iloc[0])
        next_start = times.iloc[-1] + pd.Timedelta(milliseconds=100)
        frame["timeStampSaved"] = times.dt.strftime(EXERMOTE_TIME_FORMAT).str[:-3]  # milliseconds
        frames.append(frame.iloc[: rows - have])
        have += len(frames[-1])
    if have < rows:
        raise ValueError(f"the recordings hold {have} rows, {rows} were asked for")
    return pd.concat(frames, ignore_index=True).to_csv(index=False).encode()


# --- Servers: PostgreSQL database and Redis broker for one run ------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def admin_connection(url: str):
    """An autocommit psycopg connection to the server of ``url`` (to create and drop databases)."""
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname=(parts.path or "/postgres").lstrip("/") or "postgres",
        autocommit=True,
        connect_timeout=5,
    )


def servers_available(database_url: str, redis_url: str) -> str | None:
    """None when PostgreSQL and Redis answer; otherwise why not (the benchmark is skipped)."""
    if not database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        return f"needs PostgreSQL; DATABASE_URL is {database_url!r}"
    try:
        with admin_connection(database_url) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means: not available
        return f"PostgreSQL at {database_url} does not answer: {exc}"
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis at {redis_url} does not answer: {exc}"
    return None


@contextlib.contextmanager
def bench_database(base_url: str, name: str) -> Iterator[str]:
    """A fresh PostgreSQL database beside ``base_url``'s (dropped afterwards); yields its URL."""
    with admin_connection(base_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(base_url, name)
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with admin_connection(base_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_redis_queue(redis_url: str, queue: str) -> None:
    """Remove what Kombu keeps in Redis for ``queue`` (messages left unconsumed and its binding)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = [queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
    client.delete(*keys, *(f"{queue}\x06\x16{p}" for p in range(10)))


def django_setup(database_url: str, redis_url: str, media_root: Path) -> None:
    """Configure and start Django in this process on the bench database and broker."""
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis_url,
            "MEDIA_ROOT": str(media_root),
            "DJANGO_DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "fitness.settings",
        }
    )
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Benchmarks measure capacity: the per-user upload throttle (300/hour by default) is lifted.
    os.environ.setdefault("API_UPLOAD_THROTTLE_RATE", "1000000/hour")
    setup_path()
    import django

    django.setup()


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process in MiB, from ``/proc/<pid>/status``."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time (s) a process has used so far, from ``/proc/<pid>/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (e.g. gunicorn's workers)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def run_with_servers(key: str, args, measure, print_report) -> int:
    """Shared ``main`` body of the server benchmarks: real Exermote data, PostgreSQL and
    Redis (skip with the reason when absent), a throw-away database and media folder;
    ``measure(args, files, database_url, redis_url, media)`` -> payload, written under ``key``."""
    import tempfile

    exit_on_sigterm()
    files = require_exermote(1)
    if files is None:
        return SKIPPED
    base_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    why_not = servers_available(base_url, redis_url)
    if why_not:
        log(f"SKIPPED: {why_not}")
        return SKIPPED
    with (
        tempfile.TemporaryDirectory(prefix=f"{key}-bench-") as media,
        bench_database(base_url, f"fitness_{key}_bench_{os.getpid()}") as database_url,
    ):
        payload = measure(args, files, database_url, redis_url, Path(media))
    print_report(payload)
    if not args.no_write:
        write_results(key, payload)
    return 0
