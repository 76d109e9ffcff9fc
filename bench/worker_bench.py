"""A real Celery worker: upload -> ``done`` latency and the worker's memory over 100 sessions.

    .venv/bin/python bench/worker_bench.py [--uploads 100] [--no-write]

Needs PostgreSQL (``DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/test``;
a throw-away database is created beside it and dropped afterwards) and Redis
(``BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/13``; a queue of its own, removed
afterwards). Skips with a message when either, or the Exermote data, is absent.

One Celery worker subprocess (``celery -A workers worker --pool=solo``, as ``make worker``
runs it) consumes a queue of its own. The shipped model is registered as production, as
``make migrate`` does. Real 5-minute Exermote recordings (3000 samples each) are uploaded
one after another through the whole Django stack in this process (Django test client:
multipart parsing, JWT auth, the upload view and service, the commit hook that queues the
task on Redis); after a few warm-up uploads (the first loads the model), each upload's
latency runs from just before the request to the ``finished_at`` the worker stamps when
it saves the counted session (same clock), and is also observed by polling the row.
The worker's VmRSS/VmHWM are read from ``/proc/<pid>/status`` after every session.
Results go to ``bench/results.json`` under ``"worker"``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import benchlib
from benchlib import log

GOAL_P50_S = 1.0
#: Issue 23: a worker after its first count, flat over 100 sessions.
GOAL_RSS_MIB = 350.0
WORKER_READY_TIMEOUT_S = 120
SESSION_TIMEOUT_S = 60
POLL_S = 0.005
WARMUP_UPLOADS = 3


def start_worker(queue: str, env: dict, log_path: Path) -> subprocess.Popen:
    celery = Path(sys.executable).parent / "celery"
    cmd = [
        *([str(celery)] if celery.exists() else [sys.executable, "-m", "celery"]),
        "-A", "workers", "worker", "--pool=solo", "-l", "info", "-Q", queue, "-n", f"{queue}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=benchlib.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    try:
        while " ready." not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
    except BaseException:
        stop_worker(proc)
        raise
    return proc


def stop_worker(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def upload_and_wait(client, raw: bytes, name: str) -> dict:
    """Upload one recording and wait until the worker has counted it; timings in seconds."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from fitness.workouts.models import SensorSession

    wall0, t0 = time.time(), time.perf_counter()
    resp = client.post(
        "/api/v1/sessions/",
        {"file": SimpleUploadedFile(name, raw, content_type="text/csv"), "format": "exermote"},
        format="multipart",
    )
    t_response = time.perf_counter() - t0
    if resp.status_code != 202:
        raise RuntimeError(f"upload answered {resp.status_code}: {resp.content[:500]!r}")
    session_id = resp.json()["id"]
    rows = SensorSession.objects.filter(pk=session_id)
    while True:
        status = rows.values_list("status", flat=True).first()
        if status in (SensorSession.Status.DONE, SensorSession.Status.FAILED):
            observed = time.perf_counter() - t0
            break
        if time.perf_counter() - t0 > SESSION_TIMEOUT_S:
            raise RuntimeError(f"session {session_id} still {status} after {SESSION_TIMEOUT_S} s")
        time.sleep(POLL_S)
    session = rows.get()
    start = dt.datetime.fromtimestamp(wall0, tz=dt.UTC)
    return {
        "status": status,
        "reps": session.total_reps,
        "response_s": t_response,
        "done_s": (session.finished_at - start).total_seconds(),
        "observed_s": observed,
        "worker_start_s": (session.processing_started_at - start).total_seconds(),
        "processing_s": (session.finished_at - session.processing_started_at).total_seconds(),
    }


def prepare(database_url: str, redis_url: str, media: Path) -> tuple:
    """Migrated database, the shipped model as production, an uploader; returns (client, version, queue, env)."""
    queue = f"bench-{uuid.uuid4().hex[:12]}"
    # Routes come from settings (CELERY_TASK_ROUTES): both sides read the queue from the environment.
    os.environ.update({"CELERY_COUNTING_QUEUE": queue, "CELERY_ADMIN_QUEUE": queue})
    benchlib.django_setup(database_url, redis_url, media)
    from django.core.management import call_command
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from fitness.accounts.models import User
    from fitness.mlmodels.models import ModelVersion, Stage

    call_command("migrate", verbosity=0)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
    # The shipped model as production, as `make migrate` does (TensorFlow stays out of this process).
    subprocess.run([sys.executable, "manage.py", "register_default_model"], cwd=benchlib.ROOT, env=env, check=True)
    production = ModelVersion.objects.get(stage=Stage.PRODUCTION)

    user = User.objects.create_user(username="bench-uploader", password=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client, production, queue, env


def measure(args: argparse.Namespace, files: list[Path], database_url: str, redis_url: str, media: Path) -> dict:
    machine = benchlib.machine()  # before the benchmark loads the machine itself
    client, production, queue, env = prepare(database_url, redis_url, media)
    recordings = [(p.name, p.read_bytes()) for p in files]

    log(f"starting a Celery worker on queue {queue} ...")
    worker_log = media / "worker.log"
    t_start = time.perf_counter()
    worker = start_worker(queue, env, worker_log)
    try:
        startup_s = time.perf_counter() - t_start
        rss = {"ready": benchlib.proc_status(worker.pid)}
        log(f"  ready in {startup_s:.1f} s, {rss['ready']}")
        first = upload_and_wait(client, recordings[0][1], recordings[0][0])
        rss["after first session (model loaded)"] = benchlib.proc_status(worker.pid)
        for i in range(1, WARMUP_UPLOADS):
            upload_and_wait(client, recordings[i % len(recordings)][1], recordings[i % len(recordings)][0])
        rss["after warm-up"] = benchlib.proc_status(worker.pid)
        log(f"  first session (cold) done in {first['done_s']:.2f} s; warm-up done, {rss['after warm-up']}")

        log(f"{args.uploads} uploads of 5-minute sessions, one after another ...")
        runs, series = [], []
        cpu_before = benchlib.cpu_seconds(worker.pid)
        budget_end = time.monotonic() + args.max_seconds
        for i in range(args.uploads):
            if time.monotonic() > budget_end:
                log(f"  time budget of {args.max_seconds:.0f} s spent: stopping after {i} uploads")
                break
            name, raw = recordings[(WARMUP_UPLOADS + i) % len(recordings)]
            runs.append(upload_and_wait(client, raw, name))
            series.append(benchlib.proc_status(worker.pid)["VmRSS"])
            if (i + 1) % 25 == 0:
                log(f"  {i + 1}: p50 so far {benchlib.summary_ms([r['done_s'] for r in runs])['p50_ms']} ms, "
                    f"RSS {series[-1]} MiB")  # fmt: skip
        worker_cpu = benchlib.cpu_seconds(worker.pid) - cpu_before
        rss[f"after {len(runs)} sessions"] = benchlib.proc_status(worker.pid)
        if worker.poll() is not None:
            raise RuntimeError(f"the worker died:\n{worker_log.read_text(errors='replace')[-3000:]}")
    finally:
        stop_worker(worker)
        benchlib.drop_redis_queue(redis_url, queue)

    failed = sum(r["status"] != "done" for r in runs)
    done = benchlib.summary_ms([r["done_s"] for r in runs])
    peak = max(v["VmHWM"] for v in rss.values())
    tenth = series[min(9, len(series) - 1)]
    growth = series[-1] - tenth
    return {
        "measured_at": benchlib.now_iso(),
        "machine": machine,
        "model": {"version": production.version, "checksum": production.checksum[:16]},
        "method": "real Celery worker subprocess (--pool=solo, own queue) on Redis + PostgreSQL; uploads through "
        "the Django stack in-process (test client, JWT, multipart); sequential, each waits for done; "
        f"latency = request start -> finished_at stamped by the worker; {WARMUP_UPLOADS} warm-up uploads first",
        "session": {"minutes": 5, "samples": benchlib.SESSION_ROWS, "format": "exermote", "files": len(recordings)},
        "uploads": len(runs),
        "uploads_asked": args.uploads,
        "stopped_by_time_budget_s": args.max_seconds if len(runs) < args.uploads else None,
        "failed": failed,
        "worker_startup_s": round(startup_s, 2),
        "cold_first_session_s": round(first["done_s"], 3),
        "latency": {
            "upload_to_done": done,
            "upload_to_done_observed_by_polling": benchlib.summary_ms([r["observed_s"] for r in runs]),
            "upload_response": benchlib.summary_ms([r["response_s"] for r in runs]),
            "upload_to_worker_start": benchlib.summary_ms([r["worker_start_s"] for r in runs]),
            "worker_processing": benchlib.summary_ms([r["processing_s"] for r in runs]),
        },
        # Independent of the neighbours on a shared machine (unlike the latencies).
        "worker_cpu_s_per_session": round(worker_cpu / len(runs), 3),
        "goal_p50_s": GOAL_P50_S,
        "goal_latency_met": done["p50_ms"] <= GOAL_P50_S * 1000 and not failed,
        "rss_mib": rss,
        "rss_series_mib": series,
        "rss_peak_mib": peak,
        "rss_growth_mib_sessions_10_to_last": round(growth, 1),
        "goal_rss_mib": GOAL_RSS_MIB,
        "goal_rss_met": peak <= GOAL_RSS_MIB,
    }


def print_report(p: dict) -> None:
    lat = p["latency"]
    lines = [
        f"{p['uploads']} uploads of 5-minute sessions ({p['failed']} failed), model {p['model']['version']}",
        f"{'':<34}{'p50 ms':>9}{'p95 ms':>9}",
        *(f"{name:<34}{v['p50_ms']:>9.1f}{v['p95_ms']:>9.1f}" for name, v in lat.items()),
        f"goal upload -> done p50 <= {p['goal_p50_s'] * 1000:.0f} ms: {'ok' if p['goal_latency_met'] else 'MISS'}; "
        f"worker CPU {p['worker_cpu_s_per_session'] * 1000:.0f} ms per session",
        "worker RSS (MiB): " + ", ".join(f"{k} {v['VmRSS']}" for k, v in p["rss_mib"].items()),
        f"peak (VmHWM) {p['rss_peak_mib']} MiB, growth sessions 10 -> {p['uploads']}: "
        f"{p['rss_growth_mib_sessions_10_to_last']} MiB; goal <= {p['goal_rss_mib']:.0f} MiB: "
        f"{'ok' if p['goal_rss_met'] else 'MISS'}",
    ]
    print("\n".join(lines))  # noqa: T201 - the benchmark's report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=100, help="timed uploads (after the warm-up)")
    parser.add_argument(
        "--max-seconds", type=float, default=240.0, help="stop uploading after this long (fewer uploads reported)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results.json")
    args = parser.parse_args(argv)
    return benchlib.run_with_servers("worker", args, measure, print_report)


if __name__ == "__main__":
    sys.exit(main())
