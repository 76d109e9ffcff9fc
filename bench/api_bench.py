"""Requests per second and latency of upload, session detail and statistics under gunicorn.

    .venv/bin/python bench/api_bench.py [--concurrency 4] [--seconds 20] [--no-write]

Needs PostgreSQL (``DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/test``;
a throw-away database beside it, dropped afterwards) and Redis (``BENCH_REDIS_URL``,
default ``redis://127.0.0.1:6379/13``); skips with a message when either, or the
Exermote data, is absent.

``gunicorn fitness.wsgi -w 2`` serves the API on a free port of 127.0.0.1. The database
holds one athlete with five years of counted history (``stats_bench.load_history``:
2,003 sessions, 20,000 sets, ~100,000 repetitions). A thread pool in this process
(``requests``, one connection per thread, ``--concurrency`` requests in flight) then
sends, per endpoint, up to a bounded number of requests for at most ``--seconds``:

- upload: ``POST /api/v1/sessions/`` with a real 5-minute Exermote CSV (1.5 MB), parsed
  and validated in the request; the counting tasks go to a queue of the benchmark's own
  (``bench/gunicorn_bench.py``) that nothing consumes, and are removed afterwards;
- session detail: ``GET /api/v1/sessions/{id}/`` of counted sessions (sets and repetitions);
- stats: ``GET /api/v1/stats/exercises/`` over the whole five years.

The load generator shares the 2 CPU cores with the server. Results go to
``bench/results.json`` under ``"api"``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import benchlib
from benchlib import log

GUNICORN_WORKERS = 2
SERVER_READY_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict, log_path: Path) -> subprocess.Popen:
    import requests

    cmd = [
        str(Path(sys.executable).parent / "gunicorn"), "fitness.wsgi:application",
        "-c", str(Path(__file__).resolve().parent / "gunicorn_bench.py"),
        "-w", str(GUNICORN_WORKERS), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
    ]  # fmt: skip
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=benchlib.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200:
                    return proc
            except requests.RequestException:
                pass  # not listening yet, or a worker still booting
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def load(send, *, count: int, seconds: float, concurrency: int) -> dict:
    """Call ``send(session, i) -> status`` up to ``count`` times within ``seconds``, ``concurrency`` at once."""
    import requests

    tickets = itertools.count()
    lock = threading.Lock()
    latencies, errors = [], {}
    local = threading.local()
    deadline = time.perf_counter() + seconds

    def loop() -> None:
        local.session = requests.Session()
        while time.perf_counter() < deadline:
            with lock:
                i = next(tickets)
            if i >= count:
                return
            started = time.perf_counter()
            try:
                status = send(local.session, i)
            except requests.RequestException as exc:
                status = type(exc).__name__
            elapsed = time.perf_counter() - started
            with lock:
                if isinstance(status, int) and 200 <= status < 300:
                    latencies.append(elapsed)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(loop) for _ in range(concurrency)]:
            future.result()
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(wall, 2),
        "rps": round(len(latencies) / wall, 1),
        **(benchlib.summary_ms(latencies) if latencies else {}),
    }


def measure(args: argparse.Namespace, files: list[Path], database_url: str, redis_url: str, media: Path) -> dict:
    machine = benchlib.machine()  # before the benchmark loads the machine itself
    benchlib.django_setup(database_url, redis_url, media)
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import RefreshToken
    from stats_bench import load_history

    from fitness.workouts.models import SensorSession

    call_command("migrate", verbosity=0)
    log("loading one athlete with five years of history ...")
    athlete, counts = load_history(other_users=0, seed=20240501)
    session_ids = [
        str(pk) for pk in SensorSession.objects.filter(user=athlete, status="done").values_list("pk", flat=True)
    ]
    token = str(RefreshToken.for_user(athlete).access_token)
    auth = {"Authorization": f"Bearer {token}"}
    upload_name, upload_raw = files[0].name, files[0].read_bytes()

    queue = f"bench-api-{uuid.uuid4().hex[:12]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    env = {**os.environ, "BENCH_QUEUE": queue, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
    log(f"gunicorn with {GUNICORN_WORKERS} workers on 127.0.0.1:{port} ...")
    server = start_server(port, env, media / "gunicorn.log")

    def upload(session, _i):
        files_ = {"file": (upload_name, upload_raw, "text/csv")}
        return session.post(
            f"{base}/sessions/", files=files_, data={"format": "exermote"}, headers=auth, timeout=60
        ).status_code

    def detail(session, i):
        return session.get(
            f"{base}/sessions/{session_ids[i % len(session_ids)]}/", headers=auth, timeout=60
        ).status_code

    def stats(session, _i):
        return session.get(f"{base}/stats/exercises/", headers=auth, timeout=60).status_code

    scenarios = {
        "upload (5-minute Exermote CSV, 1.5 MB)": (upload, args.uploads),
        "session detail": (detail, args.requests),
        "stats/exercises (5 years)": (stats, args.requests),
    }
    results = {}
    try:
        for name, (send, count) in scenarios.items():
            # Warm-up: every gunicorn worker has served this endpoint before timing starts.
            load(send, count=4 * args.concurrency, seconds=args.seconds, concurrency=args.concurrency)
            # CPU time used per request by the server's workers and by this load generator: unlike
            # requests/s, it does not depend on what else the shared machine is doing.
            workers = benchlib.children(server.pid)
            server_cpu, client_cpu = sum(map(benchlib.cpu_seconds, workers)), time.process_time()
            r = load(send, count=count, seconds=args.seconds, concurrency=args.concurrency)
            server_cpu = sum(map(benchlib.cpu_seconds, workers)) - server_cpu
            client_cpu = time.process_time() - client_cpu
            r["server_cpu_ms_per_request"] = round(server_cpu * 1000 / max(r["requests"], 1), 1)
            r["load_generator_cpu_ms_per_request"] = round(client_cpu * 1000 / max(r["requests"], 1), 1)
            # One request at a time: the latency without queueing behind the others.
            r["one_at_a_time"] = load(send, count=count // 4, seconds=args.seconds / 2, concurrency=1)
            results[name] = r
            log(
                f"  {name}: {r['rps']} req/s, p50 {r.get('p50_ms')} ms, p95 {r.get('p95_ms')} ms, "
                f"server CPU {r['server_cpu_ms_per_request']} ms/request, errors {r['errors']}; one at a time: "
                f"p50 {r['one_at_a_time'].get('p50_ms')} ms, p95 {r['one_at_a_time'].get('p95_ms')} ms"
            )
    finally:
        stop_server(server)
        benchlib.drop_redis_queue(redis_url, queue)
    return {
        "measured_at": benchlib.now_iso(),
        "machine": machine,
        "method": f"gunicorn fitness.wsgi -w {GUNICORN_WORKERS} (sync) on 127.0.0.1, PostgreSQL + Redis; "
        f"load generator (this process) on the same 2 cores: {args.concurrency} threads with requests.Session, "
        f"at most {args.seconds} s per endpoint after a short warm-up, then one request at a time for at most "
        f"{args.seconds / 2} s; server CPU per request from /proc of the gunicorn workers; JWT auth; the upload "
        "throttle lifted",
        "dataset": {"athlete": counts},
        "gunicorn_workers": GUNICORN_WORKERS,
        "concurrency": args.concurrency,
        "endpoints": results,
    }


def print_report(p: dict) -> None:
    width = max(len(name) for name in p["endpoints"])
    lines = [
        f"{'':<{width}}  {p['concurrency']} in flight{'':<19}one at a time",
        f"{'endpoint':<{width}}  {'req/s':>7}  {'p50 ms':>7}  {'p95 ms':>7}  {'CPU ms':>7}"
        f"  {'p50 ms':>7}  {'p95 ms':>7}  errors",
    ]
    for name, r in p["endpoints"].items():
        one = r["one_at_a_time"]
        lines.append(
            f"{name:<{width}}  {r['rps']:>7.1f}  {r.get('p50_ms', 0.0):>7.1f}  {r.get('p95_ms', 0.0):>7.1f}"
            f"  {r['server_cpu_ms_per_request']:>7.1f}  {one.get('p50_ms', 0.0):>7.1f}  {one.get('p95_ms', 0.0):>7.1f}"
            f"  {r['errors'] or one['errors'] or ''}"
        )
    print("\n".join(lines))  # noqa: T201 - the benchmark's report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--seconds", type=float, default=20.0, help="time limit per endpoint")
    parser.add_argument("--requests", type=int, default=2000, help="most GET requests per endpoint")
    parser.add_argument("--uploads", type=int, default=300, help="most uploads")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results.json")
    args = parser.parse_args(argv)
    return benchlib.run_with_servers("api", args, measure, print_report)


if __name__ == "__main__":
    sys.exit(main())
