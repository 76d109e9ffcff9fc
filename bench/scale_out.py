"""Scale-out on loopback: sessions per minute and upload -> done latency with 1, 2 and 4
counting workers; then upload -> done on a warm worker while an evaluation runs on the admin queue.

    make scale-out
    .venv/bin/python bench/scale_out.py [--workers 1,2,4] [--burst 40] [--uploads 20] [--no-write]

Needs PostgreSQL (``DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/test``; a
throw-away database is created beside it and dropped afterwards), Redis (``BENCH_REDIS_URL``,
default ``redis://127.0.0.1:6379/13``; a counting and an admin queue of the run's own, removed
afterwards) and the Exermote recordings; skips with the reason when one is absent.

Servers: gunicorn (``--web-workers`` processes, 4 threads each) on 127.0.0.1, and Celery
workers started as separate processes (``--pool=solo``, one task at a time, prefetch 1, as a
host's worker would run), each consuming the run's counting queue, or its admin queue.

1. Scale-out: for each worker count N, N counting workers are started and warmed (every one has
   loaded the model), then ``--burst`` real 5-minute Exermote sessions (3000 samples at 10 Hz)
   are uploaded through HTTP by 4 client threads as fast as gunicorn takes them, and counted.
   Sessions per minute = sessions / (last ``finished_at`` - first upload start); upload ->
   done = request start -> the ``finished_at`` the worker stamps (one clock), so under a burst it
   includes the wait in the queue.
2. Admin queue: one warm counting worker and one admin worker. ``--uploads`` sessions are
   uploaded one after another (each waits for ``done``), first alone (baseline), then while
   an evaluation of the production model runs on the admin queue (queued again whenever it
   ends, so that every measured upload overlaps one). Goal: p50 <= 150 ms.
3. One queue for both (for comparison, as before the split): one worker consuming both queues;
   an evaluation is queued first, then a session: its upload -> done includes the evaluation.

Results go to ``bench/results.json`` under ``"scale_out"``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import benchlib
from benchlib import log
from load_test import Client, Recording, Stats, free_port

ROOT = benchlib.ROOT
VENV_BIN = Path(sys.executable).parent
GOAL_ADMIN_P50_MS = 150.0
READY_TIMEOUT_S = 120
SESSION_TIMEOUT_S = 120
UPLOAD_THREADS = 4
POLL_S = 0.005


class Servers:
    """gunicorn and Celery workers on the run's database, broker queues and media folder."""

    def __init__(self, database_url: str, redis_url: str, media: Path, web_workers: int) -> None:
        self.tag = f"scale-{os.getpid()}"
        self.counting, self.admin = f"{self.tag}-counting", f"{self.tag}-admin"
        self.media = media
        self.redis_url = redis_url
        self.web_workers = web_workers
        self.port = free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "fitness.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis_url,
            "CELERY_COUNTING_QUEUE": self.counting,
            "CELERY_ADMIN_QUEUE": self.admin,
            "MEDIA_ROOT": str(media / "media"),
            "API_AUTH_THROTTLE_RATE": "100000/minute",
            "API_UPLOAD_THROTTLE_RATE": "100000/minute",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        self.web: subprocess.Popen | None = None
        self.workers: list[tuple[subprocess.Popen, Path]] = []
        self._started = 0

    def _spawn(self, cmd: list[str], log_path: Path) -> subprocess.Popen:
        with log_path.open("wb") as out:
            return subprocess.Popen(  # noqa: S603 - our own programs from the virtual environment
                cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start_web(self) -> None:
        cmd = [
            str(VENV_BIN / "gunicorn"), "fitness.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.web_workers), "--threads", "4", "--worker-class", "gthread",
            "--timeout", "60", "--log-level", "warning",
        ]  # fmt: skip
        self.web = self._spawn(cmd, self.media / "gunicorn.log")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            if self.web.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{(self.media / 'gunicorn.log').read_text()[-3000:]}")
            time.sleep(0.3)

    def start_workers(self, n: int, queues: str) -> list[tuple[subprocess.Popen, Path]]:
        """``n`` solo-pool worker processes consuming ``queues`` (comma-separated); waits until ready."""
        started = []
        for _ in range(n):
            self._started += 1
            name = f"{self.tag}-w{self._started}"
            log_path = self.media / f"{name}.log"
            cmd = [
                str(VENV_BIN / "celery"), "-A", "workers", "worker", "--pool=solo", "-l", "info", "-Q", queues,
                "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
            ]  # fmt: skip
            started.append((self._spawn(cmd, log_path), log_path))
        self.workers += started
        deadline = time.monotonic() + READY_TIMEOUT_S
        for proc, log_path in started:
            while " ready." not in log_path.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"a worker did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.2)
        return started

    def stop_workers(self) -> None:
        for proc, _ in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.web is not None and self.web.poll() is None:
            os.killpg(self.web.pid, signal.SIGTERM)
            try:
                self.web.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.web.pid, signal.SIGKILL)
        for queue in (self.counting, self.admin):
            with contextlib.suppress(Exception):
                benchlib.drop_redis_queue(self.redis_url, queue)


def tasks_done(log_path: Path) -> int:
    return log_path.read_text(errors="replace").count(" succeeded in ")


# --- Uploads ------------------------------------------------------------------------------


class Uploader:
    """HTTP uploads of real sessions by one user; timings from the rows the worker saved."""

    def __init__(self, port: int, recordings: list[Recording]) -> None:
        from rest_framework_simplejwt.tokens import RefreshToken

        from fitness.accounts.models import User

        self.port = port
        self.recordings = recordings
        self.stats = Stats()
        user = User.objects.create_user(username=f"scale-{uuid.uuid4().hex[:8]}", password=None)
        self.token = str(RefreshToken.for_user(user).access_token)
        self._next = 0
        self._lock = threading.Lock()

    def client(self) -> Client:
        client = Client(self.port, self.stats)
        client.token = self.token
        return client

    def upload(self, client: Client) -> tuple[str, float]:
        """One upload; returns (session id, wall-clock time of the request start)."""
        with self._lock:
            recording = self.recordings[self._next % len(self.recordings)]
            self._next += 1
        started = time.time()
        status, body = client.upload(recording, str(uuid.uuid4()))
        if status != 202:
            raise RuntimeError(f"upload answered {status}: {self.stats.errors[-1:]}")
        return body["id"], started

    def burst(self, count: int) -> list[tuple[str, float]]:
        """``count`` uploads from UPLOAD_THREADS threads at once, as fast as they are answered."""
        out: list[tuple[str, float]] = []
        errors: list[BaseException] = []
        remaining = iter(range(count))
        lock = threading.Lock()

        def loop() -> None:
            client = self.client()
            while True:
                with lock:
                    if next(remaining, None) is None:
                        return
                try:
                    result = self.upload(client)
                except BaseException as exc:  # noqa: BLE001 - reported by the caller
                    errors.append(exc)
                    return
                with lock:
                    out.append(result)

        threads = [threading.Thread(target=loop) for _ in range(UPLOAD_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return out


def wait_done(ids: list[str], timeout_s: float = SESSION_TIMEOUT_S) -> dict[str, tuple[str, dt.datetime]]:
    """Wait until every session is done or failed; returns id -> (status, finished_at)."""
    from fitness.workouts.models import SensorSession

    deadline = time.monotonic() + timeout_s
    while True:
        rows = SensorSession.objects.filter(pk__in=ids, status__in=["done", "failed"])
        if rows.count() == len(ids):
            return {str(pk): (s, f) for pk, s, f in rows.values_list("pk", "status", "finished_at")}
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(ids) - rows.count()} sessions not counted after {timeout_s:.0f} s")
        time.sleep(POLL_S if len(ids) == 1 else 0.05)


def latencies_s(uploads: list[tuple[str, float]], done: dict) -> list[float]:
    return [done[sid][1].timestamp() - started for sid, started in uploads]


def sequential(uploader: Uploader, count: int, during=None) -> list[dict]:
    """``count`` uploads one after another, each waiting for done. ``during()`` -> bool says
    (before and after each upload) whether the condition held; kept per upload."""
    client = uploader.client()
    runs = []
    for _ in range(count):
        before = during() if during else None
        sid, started = uploader.upload(client)
        status, finished = wait_done([sid])[sid]
        after = during() if during else None
        runs.append({"status": status, "s": finished.timestamp() - started, "overlap": bool(before and after)})
    return runs


# --- The measurements -------------------------------------------------------------------------


def warm(servers: Servers, uploader: Uploader, workers: list) -> None:
    """Until every worker has counted at least one session (its model is loaded)."""
    for _ in range(5):
        if all(tasks_done(log_path) for _, log_path in workers):
            return
        ids = [sid for sid, _ in uploader.burst(len(workers))]
        wait_done(ids, timeout_s=240)
    raise RuntimeError("not every worker took a warm-up session")


def scale_run(servers: Servers, uploader: Uploader, n: int, burst: int) -> dict:
    log(f"{n} counting worker(s): starting and warming ...")
    workers = servers.start_workers(n, servers.counting)
    try:
        warm(servers, uploader, workers)
        time.sleep(1.0)  # a warm-up task's log line may follow its commit
        before = [tasks_done(p) for _, p in workers]
        cpu_before = sum(benchlib.cpu_seconds(proc.pid) for proc, _ in workers)
        t0 = time.time()
        uploads = uploader.burst(burst)
        upload_s = time.time() - t0
        done = wait_done([sid for sid, _ in uploads], timeout_s=600)
        worker_cpu = sum(benchlib.cpu_seconds(proc.pid) for proc, _ in workers) - cpu_before
    finally:
        servers.stop_workers()
    # Read once the workers are gone: a task's log line may follow its commit.
    per_worker = [tasks_done(p) - b for (_, p), b in zip(workers, before, strict=True)]
    first_start = min(started for _, started in uploads)
    last_done = max(finished.timestamp() for _, finished in done.values())
    span = last_done - first_start
    lat = benchlib.summary_ms(latencies_s(uploads, done))
    result = {
        "workers": n,
        "sessions": burst,
        "failed": sum(status != "done" for status, _ in done.values()),
        "sessions_per_min": round(burst / span * 60, 1),
        "span_s": round(span, 2),
        "upload_phase_s": round(upload_s, 2),
        "upload_to_done": lat,
        "sessions_per_worker": per_worker,
        "worker_cpu_s_per_session": round(worker_cpu / burst, 3),
    }
    log(f"  {n} worker(s): {result['sessions_per_min']} sessions/min, upload -> done p50 {lat['p50_ms']} ms, "
        f"p95 {lat['p95_ms']} ms ({per_worker} per worker)")  # fmt: skip
    return result


def admin_run(servers: Servers, uploader: Uploader, uploads: int) -> dict:
    from fitness.mlmodels.models import EvaluationStatus, ModelVersion, Stage
    from fitness.mlmodels.services import model_version_queue_evaluation

    production = ModelVersion.objects.get(stage=Stage.PRODUCTION)

    def evaluation_status() -> str:
        return ModelVersion.objects.filter(pk=production.pk).values_list("evaluation_status", flat=True).get()

    def running() -> bool:
        return evaluation_status() == EvaluationStatus.RUNNING

    log("admin queue: one counting worker, one admin worker ...")
    counting = servers.start_workers(1, servers.counting)
    admin = servers.start_workers(1, servers.admin)
    evaluations = 0
    stop = threading.Event()

    def keep_evaluating() -> None:
        nonlocal evaluations
        while not stop.is_set():
            if evaluation_status() not in (EvaluationStatus.QUEUED, EvaluationStatus.RUNNING):
                model_version_queue_evaluation(version=production.pk, user=None)
                evaluations += 1
            time.sleep(0.02)

    try:
        warm(servers, uploader, counting)
        sequential(uploader, 3)  # the counting worker is warm
        baseline = sequential(uploader, uploads)
        log(f"  baseline: p50 {benchlib.summary_ms([r['s'] for r in baseline])['p50_ms']} ms")
        evaluator = threading.Thread(target=keep_evaluating, daemon=True)
        evaluator.start()
        deadline = time.monotonic() + 240
        while not running():  # the admin worker loads the model for its first evaluation
            if time.monotonic() > deadline:
                raise RuntimeError("the evaluation did not start")
            time.sleep(0.05)
        during = sequential(uploader, uploads, during=running)
        stop.set()
        evaluator.join(timeout=10)
        evaluated = tasks_done(admin[0][1])
        admin_cpu = benchlib.cpu_seconds(admin[0][0].pid)
    finally:
        stop.set()
        servers.stop_workers()
    # An evaluation the stop cut short, or one still queued, must not run in the next part.
    benchlib.drop_redis_queue(servers.redis_url, servers.admin)
    ModelVersion.objects.filter(
        pk=production.pk, evaluation_status__in=[EvaluationStatus.QUEUED, EvaluationStatus.RUNNING]
    ).update(evaluation_status=EvaluationStatus.FAILED, evaluation_error="stopped by the benchmark")
    overlapping = [r["s"] for r in during if r["overlap"]]
    result = {
        "uploads": uploads,
        "baseline_upload_to_done": benchlib.summary_ms([r["s"] for r in baseline]),
        "with_evaluation_upload_to_done": benchlib.summary_ms([r["s"] for r in during]),
        "uploads_overlapping_a_running_evaluation": len(overlapping),
        "overlapping_upload_to_done": benchlib.summary_ms(overlapping) if overlapping else None,
        "evaluations_queued": evaluations,
        "evaluations_finished": evaluated,
        "admin_worker_cpu_s": round(admin_cpu, 1),
        "failed": sum(r["status"] != "done" for r in baseline + during),
    }
    p50 = (result["overlapping_upload_to_done"] or result["with_evaluation_upload_to_done"])["p50_ms"]
    result["goal_p50_ms"] = GOAL_ADMIN_P50_MS
    result["goal_met"] = p50 <= GOAL_ADMIN_P50_MS and not result["failed"]
    log(f"  with an evaluation running: p50 {p50} ms ({len(overlapping)}/{uploads} uploads overlapped one)")
    return result


def shared_queue_run(servers: Servers, uploader: Uploader, uploads: int = 2) -> dict:
    """One worker for both queues: an evaluation queued just before a session delays it."""
    from fitness.mlmodels.models import EvaluationStatus, ModelVersion, Stage
    from fitness.mlmodels.services import model_version_queue_evaluation

    production = ModelVersion.objects.get(stage=Stage.PRODUCTION)
    log("one worker on both queues: an evaluation, then a session ...")
    workers = servers.start_workers(1, f"{servers.counting},{servers.admin}")
    runs = []
    try:
        warm(servers, uploader, workers)
        for _ in range(uploads):
            t0 = time.time()
            model_version_queue_evaluation(version=production.pk, user=None)
            while ModelVersion.objects.filter(pk=production.pk, evaluation_status=EvaluationStatus.QUEUED).exists():
                time.sleep(0.01)
            upload_to_done = sequential(uploader, 1)[0]["s"]
            while ModelVersion.objects.filter(pk=production.pk, evaluation_status=EvaluationStatus.RUNNING).exists():
                time.sleep(0.05)
            runs.append({"upload_to_done_s": round(upload_to_done, 3), "evaluation_s": round(time.time() - t0, 2)})
    finally:
        servers.stop_workers()
    log(f"  upload -> done behind an evaluation: {[r['upload_to_done_s'] for r in runs]} s")
    return {"runs": runs}


def measure(args: argparse.Namespace, files: list[Path], database_url: str, redis_url: str, media: Path) -> dict:
    machine = benchlib.machine()
    servers = Servers(database_url, redis_url, media, args.web_workers)
    # This process publishes (evaluations) on the run's queues and reads the run's rows.
    os.environ.update({k: servers.env[k] for k in ("CELERY_COUNTING_QUEUE", "CELERY_ADMIN_QUEUE")})
    benchlib.django_setup(database_url, redis_url, media / "media")
    from django.core.management import call_command

    from fitness.mlmodels.models import ModelVersion, Stage

    call_command("migrate", verbosity=0)
    # The shipped model as production, as `make migrate` does (the model runtime stays out of this process).
    subprocess.run([sys.executable, "manage.py", "register_default_model"], cwd=ROOT, env=servers.env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    production = ModelVersion.objects.get(stage=Stage.PRODUCTION)
    recordings = [Recording(p.stem, p.read_bytes(), "", None, "exermote") for p in files]
    counts = [int(n) for n in args.workers.split(",")]
    try:
        servers.start_web()
        uploader = Uploader(servers.port, recordings)
        scale = [scale_run(servers, uploader, n, args.burst) for n in counts]
        admin = admin_run(servers, uploader, args.uploads)
        shared = shared_queue_run(servers, uploader) if not args.skip_shared else None
    finally:
        servers.stop()
    base = scale[0]["sessions_per_min"]
    for run in scale:
        run["speedup"] = round(run["sessions_per_min"] / base, 2)
    return {
        "measured_at": benchlib.now_iso(),
        "machine": machine,
        "model": {"version": production.version, "checksum": production.checksum[:16]},
        "method": (
            f"loopback: gunicorn -w {args.web_workers} (gthread, 4 threads) + separate Celery worker processes "
            "(--pool=solo, prefetch 1) on Redis and a throw-away PostgreSQL database; real 5-minute Exermote "
            f"sessions uploaded over HTTP; burst of {args.burst} by {UPLOAD_THREADS} threads per worker count; "
            "upload -> done = request start -> finished_at stamped by the worker"
        ),
        "session": {"minutes": 5, "samples": benchlib.SESSION_ROWS, "format": "exermote", "files": len(recordings)},
        "scale_out": scale,
        "admin_queue": admin,
        "one_queue_for_both": shared,
    }


def print_report(p: dict) -> None:
    machine = p["machine"]
    lines = [
        f"model {p['model']['version']}, {machine['cpus']} CPUs (load {machine['load_avg_1m_at_start']} at start)",
        f"{'workers':>8}{'sessions/min':>14}{'speedup':>9}{'p50 ms':>9}{'p95 ms':>9}{'per worker':>16}",
    ]
    for r in p["scale_out"]:
        lat = r["upload_to_done"]
        lines.append(f"{r['workers']:>8}{r['sessions_per_min']:>14.1f}{r['speedup']:>9.2f}{lat['p50_ms']:>9.1f}"
                     f"{lat['p95_ms']:>9.1f}{r['sessions_per_worker']!s:>16}")  # fmt: skip
    a = p["admin_queue"]
    during = a["overlapping_upload_to_done"] or a["with_evaluation_upload_to_done"]
    lines.append(
        f"upload -> done, one warm worker: alone p50 {a['baseline_upload_to_done']['p50_ms']} ms; with an evaluation "
        f"on the admin queue p50 {during['p50_ms']} ms, p95 {during['p95_ms']} ms "
        f"({a['uploads_overlapping_a_running_evaluation']}/{a['uploads']} overlapped); goal <= "
        f"{a['goal_p50_ms']:.0f} ms: {'ok' if a['goal_met'] else 'MISS'}"
    )
    if p["one_queue_for_both"]:
        runs = p["one_queue_for_both"]["runs"]
        lines.append("one queue for both: upload -> done behind an evaluation " +
                     ", ".join(f"{r['upload_to_done_s']} s" for r in runs))  # fmt: skip
    print("\n".join(lines))  # noqa: T201 - the benchmark's report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="counting worker counts to run (comma-separated)")
    parser.add_argument("--burst", type=int, default=40, help="sessions uploaded at once per worker count")
    parser.add_argument("--uploads", type=int, default=20, help="sequential uploads, alone and with an evaluation")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (4 threads each)")
    parser.add_argument("--skip-shared", action="store_true", help="skip the one-queue-for-both comparison")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results.json")
    args = parser.parse_args(argv)
    if not 1 <= args.burst <= 400 or not 1 <= args.uploads <= 200:
        parser.error("bounded: 1-400 sessions a burst, 1-200 uploads")
    if "DJANGO_SECRET_KEY" not in os.environ and (ROOT / "var" / "secret_key").is_file():
        os.environ["DJANGO_SECRET_KEY"] = (ROOT / "var" / "secret_key").read_text().strip()  # as `make` passes it
    return benchlib.run_with_servers("scale_out", args, measure, print_report)


if __name__ == "__main__":
    sys.exit(main())
