"""Bounded load test on loopback: N users upload and read for M minutes against gunicorn
with a real Celery worker; afterwards every accepted upload must be counted, once.

    make load                                  # N=8 users, M=1 minute
    .venv/bin/python bench/load_test.py --users 16 --minutes 3

Everything runs on this machine and stops by itself: a throw-away database (a new
PostgreSQL database beside ``DATABASE_URL``'s, dropped afterwards; or a SQLite file),
the broker of ``CELERY_BROKER_URL`` on a queue of the run's own (removed afterwards on
Redis; default: the embedded filesystem broker in a temporary folder), gunicorn on
127.0.0.1 and one worker. SIGINT or SIGTERM (``timeout``) stops the servers and drops the
database too.

Each simulated user registers, obtains tokens, then until the time is up: uploads a
recording with a fresh ``client_id`` (one upload in ten is sent twice, as a phone whose
network dropped the answer would: the retry must answer 200 with the same session),
then reads its sessions, one session, its statistics and its set history, with a short
pause between requests. The recordings are synthetic with known counts (jumping jacks,
peak counter) plus one the classifier counts. After the deadline the script waits until
every accepted session is ``done`` and checks, through the API and the database, that
each accepted upload is one session with the counts its recording must have: none lost,
none doubled. It prints N, M, requests, throughput, latencies and errors, and exits
non-zero on any error or lost or doubled upload.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
import numpy as np
from benchlib import log

benchlib.setup_path()
ROOT = benchlib.ROOT
VENV_BIN = Path(sys.executable).parent
PASSWORD = "load-test-Passw0rd-9"  # noqa: S105 - throw-away accounts in a throw-away database
THINK_S = (0.2, 0.8)
DRAIN_TIMEOUT_S = 600


# --- Recordings with known counts ----------------------------------------------------------


def jumping_jacks(rate_hz: float, sets: list[tuple[float, float, float]], seconds: float, seed: int) -> bytes:
    """Accelerometer CSV (acc_x/y/z, m/s^2) with jumping jacks in ``sets`` of (start s, end s, Hz)."""
    t = np.arange(0, seconds, 1 / rate_hz)
    swing = np.zeros_like(t)
    for start, end, hz in sets:
        inside = (t > start) & (t < end)
        swing[inside] = 4.0 * np.sin(2 * np.pi * hz * t[inside])
    noise = np.random.default_rng(seed).normal(0, 0.05, size=(len(t), 3))
    acc = np.column_stack([0.3 * swing, np.zeros_like(t), 9.81 + swing]) + noise
    out = io.StringIO()
    out.write("time_s,acc_x,acc_y,acc_z\n")
    for ti, (x, y, z) in zip(t, acc, strict=True):
        out.write(f"{ti:.3f},{x:.4f},{y:.4f},{z:.4f}\n")
    return out.getvalue().encode()


def classifier_recording(seconds: float = 30.0, rate_hz: float = 10.0) -> bytes:
    """The shipped model's channels (a slow oscillation): counted by the phase classifier."""
    from inference.model import DEFAULT_MODEL_PATH, read_metadata

    channels = read_metadata(DEFAULT_MODEL_PATH)["channels"]
    t = np.arange(0, seconds, 1 / rate_hz)
    out = io.StringIO()
    out.write(",".join(["time_s", *channels]) + "\n")
    for ti in t:
        values = [0.3 * np.sin(2 * np.pi * 0.4 * ti + k) for k in range(len(channels))]
        out.write(f"{ti:.3f}," + ",".join(f"{v:.4f}" for v in values) + "\n")
    return out.getvalue().encode()


@dataclass(frozen=True)
class Recording:
    name: str
    data: bytes
    exercise: str
    expected_sets: tuple[int, ...] | None  # None: not known in advance (the classifier)
    fmt: str = "csv"  # the upload's ``format`` field


def recordings() -> list[Recording]:
    from inference.io import read_recording
    from inference.peaks import count_peaks

    out = []
    peak_specs = [
        ("jacks-2-sets", 50.0, [(5, 25, 1.0), (30, 37, 1.0)], 40.0),
        ("jacks-fast", 50.0, [(3, 18, 1.5)], 22.0),
        ("jacks-3-sets", 100.0, [(2, 12, 1.2), (16, 26, 1.2), (30, 40, 0.8)], 45.0),
    ]
    for i, (name, rate, sets, seconds) in enumerate(peak_specs):
        data = jumping_jacks(rate, sets, seconds, seed=i)
        counted = count_peaks(read_recording(data, "csv"), exercise="jumping_jack")
        out.append(Recording(name, data, "jumping_jack", tuple(s.reps for s in counted)))
    out.append(Recording("classifier", classifier_recording(), "", None))
    return out


# --- HTTP client --------------------------------------------------------------------------


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def record(self, name: str, status: int, seconds: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.latencies[name].append(seconds)
            self.statuses[(name, status)] += 1
            if not ok:
                self.errors.append(f"{name}: {status} {detail[:200]}")


class Client:
    """One user's keep-alive connection."""

    def __init__(self, port: int, stats: Stats) -> None:
        self.port = port
        self.stats = stats
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.token = ""

    def request(self, name: str, method: str, path: str, *, body=None, headers=None, expect=(200,)):
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.stats.record(name, 0, time.perf_counter() - started, False, f"{type(exc).__name__}: {exc}")
            return 0, None
        ok = status in expect
        self.stats.record(name, status, time.perf_counter() - started, ok, raw.decode(errors="replace"))
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    def upload(self, recording: Recording, client_id: str, *, retry: bool = False):
        boundary = uuid.uuid4().hex
        fields = {"format": recording.fmt, "client_id": client_id}
        if recording.exercise:
            fields["exercise"] = recording.exercise
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{recording.name}.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n".encode()
            + recording.data
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        name, expect = ("POST sessions (retry)", (200,)) if retry else ("POST sessions (upload)", (202,))
        return self.request(name, "POST", "/api/v1/sessions/", body=b"".join(parts), headers=headers, expect=expect)


@dataclass
class Accepted:
    user: str
    client_id: str
    session_id: str
    recording: Recording


@dataclass(frozen=True)
class Run:
    port: int
    deadline: float
    catalogue: list[Recording]
    stats: Stats
    accepted: list[Accepted]


def simulate_user(index: int, run: Run) -> None:
    rng = random.Random(index)  # noqa: S311 - a load pattern, not a secret
    client = Client(run.port, run.stats)
    stats, deadline, catalogue, out = run.stats, run.deadline, run.catalogue, run.accepted
    username = f"load{index}-{uuid.uuid4().hex[:6]}"
    client.request("POST auth/register", "POST", "/api/v1/auth/register/",
                   body={"username": username, "password": PASSWORD}, expect=(201,))  # fmt: skip
    status, tokens = client.request("POST auth/token", "POST", "/api/v1/auth/token/",
                                    body={"username": username, "password": PASSWORD})  # fmt: skip
    if status != 200:
        return
    client.token = tokens["access"]
    mine: list[str] = []
    while time.monotonic() < deadline:
        recording = rng.choice(catalogue)
        client_id = str(uuid.uuid4())
        status, body = client.upload(recording, client_id)
        if status == 202:
            mine.append(body["id"])
            out.append(Accepted(username, client_id, body["id"], recording))
            if rng.random() < 0.1:  # the answer was lost on the way: the app retries
                retry_status, retry = client.upload(recording, client_id, retry=True)
                if retry_status == 200 and (retry or {}).get("id") != body["id"]:
                    stats.record("retry returns the original", retry_status, 0.0, False, json.dumps(retry)[:200])
        for name, path in (
            ("GET sessions", "/api/v1/sessions/"),
            ("GET session", f"/api/v1/sessions/{rng.choice(mine)}/" if mine else "/api/v1/sessions/"),
            ("GET stats/exercises", "/api/v1/stats/exercises/"),
            ("GET sets", "/api/v1/sets/?page_size=100"),
        ):
            if time.monotonic() >= deadline:
                break
            client.request(name, "GET", path)
            time.sleep(rng.uniform(*THINK_S))


# --- Servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "pgsql://"))


class Environment:
    """Media folder and broker queue on a throw-away database; gunicorn and a worker on them.

    ``database_url`` is the run's own database: a SQLite file in ``workdir``, or a PostgreSQL
    database that ``benchlib.bench_database`` created (and drops)."""

    #: The Celery pool options (bench/hostile_uploads.py runs the prefork pool of ``make run``).
    worker_pool: tuple[str, ...] = ("--pool=solo",)

    def __init__(self, args, workdir: Path, database_url: str) -> None:
        self.args = args
        self.workdir = workdir
        self.queue = f"load-{os.getpid()}"
        self.port = args.port or free_port()
        broker = os.environ.get("CELERY_BROKER_URL", "filesystem://")
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "fitness.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker,
            "CELERY_BROKER_DIR": str(workdir / "broker"),
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            # The worker consumes one queue: counting and admin tasks both go there.
            "CELERY_COUNTING_QUEUE": self.queue,
            "CELERY_ADMIN_QUEUE": self.queue,
            "MEDIA_ROOT": str(workdir / "media"),
            # Every simulated user comes from 127.0.0.1: per-address limits would throttle them together.
            "API_AUTH_THROTTLE_RATE": "100000/minute",
            "API_UPLOAD_THROTTLE_RATE": "100000/minute",
            "PYTHONUNBUFFERED": "1",
        }
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def broker_url(self) -> str:
        return self.env["CELERY_BROKER_URL"]

    def setup(self) -> None:
        log(f"migrating {self.database_url()} ...")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=self.env, check=True)  # fmt: skip
        subprocess.run([sys.executable, "manage.py", "register_default_model"], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip

    def start(self) -> None:
        gunicorn = [
            str(VENV_BIN / "gunicorn"), "fitness.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.args.web_workers), "--threads", "4", "--worker-class", "gthread",
            "--timeout", "60", "--log-level", "warning",
        ]  # fmt: skip
        worker = [
            str(VENV_BIN / "celery"), "-A", "workers", "worker", *self.worker_pool, "-l", "warning",
            "-Q", self.queue, "-n", f"{self.queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        for name, cmd in (("gunicorn", gunicorn), ("worker", worker)):
            log_file = (self.workdir / f"{name}.log").open("wb")
            proc = subprocess.Popen(  # noqa: S603 - our own programs from the virtual environment
                cmd, cwd=ROOT, env=self.env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
            self.procs.append((name, proc))
        deadline = time.monotonic() + 90
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited:\n{(self.workdir / f'{name}.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not answer /healthz in 90 s")
            time.sleep(0.3)

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if self.broker_url().startswith(("redis://", "rediss://")):
            with contextlib.suppress(Exception):  # what is left there is only clutter
                benchlib.drop_redis_queue(self.broker_url(), self.queue)


# --- Verification ----------------------------------------------------------------------------


def verify(environment: Environment, accepted: list[Accepted]) -> tuple[list[str], dict]:
    """Wait for every accepted session to be counted; check none is lost or doubled."""
    benchlib.django_setup(environment.database_url(), environment.broker_url(), Path(environment.env["MEDIA_ROOT"]))
    from fitness.workouts.models import SensorSession

    ids = [a.session_id for a in accepted]
    started = time.monotonic()
    while True:
        pending = SensorSession.objects.filter(pk__in=ids).exclude(status__in=["done", "failed"]).count()
        if not pending:
            break
        if time.monotonic() - started > DRAIN_TIMEOUT_S:
            break
        time.sleep(1)
    drain_s = time.monotonic() - started
    problems = [f"{pending} sessions still not counted after {DRAIN_TIMEOUT_S} s"] if pending else []
    problems += check_accepted(accepted)
    counts = Counter(SensorSession.objects.filter(pk__in=ids).values_list("status", flat=True))
    return problems, {"drain_s": drain_s, "statuses": dict(counts)}


def check_accepted(accepted: list[Accepted]) -> list[str]:
    """Each accepted upload is one counted session of its user, with the counts of its recording."""
    from fitness.workouts.models import ExerciseSet, Repetition, SensorSession

    ids = [a.session_id for a in accepted]
    problems = []
    sessions = {str(s.pk): s for s in SensorSession.objects.filter(pk__in=ids)}
    set_rows = defaultdict(list)
    for row in ExerciseSet.objects.filter(session__in=ids).order_by("session", "index").values("session", "reps"):
        set_rows[str(row["session"])].append(row["reps"])
    rep_rows = Counter(
        str(s) for s in Repetition.objects.filter(set__session__in=ids).values_list("set__session", flat=True)
    )
    by_client = Counter((a.user, a.client_id) for a in accepted)
    doubled = [k for k, n in by_client.items() if n > 1]
    if doubled:
        problems.append(f"{len(doubled)} client ids were accepted twice (202 for a retry)")
    per_user_db = Counter(
        SensorSession.objects.filter(user__username__in={a.user for a in accepted}).values_list(
            "user__username", flat=True
        )
    )
    per_user_accepted = Counter(a.user for a in accepted)
    if per_user_db != per_user_accepted:
        problems.append(f"sessions per user in the database {dict(per_user_db)} != accepted {dict(per_user_accepted)}")
    classifier_results = set()
    for a in accepted:
        session = sessions.get(a.session_id)
        if session is None:
            problems.append(f"session {a.session_id} was lost")
            continue
        if session.status != "done":
            problems.append(f"session {a.session_id} is {session.status}: {session.error}")
            continue
        reps = set_rows[a.session_id]
        if session.total_reps != sum(reps) or rep_rows[a.session_id] != sum(reps):
            problems.append(f"session {a.session_id}: total {session.total_reps}, sets {reps}, reps rows "
                            f"{rep_rows[a.session_id]}")  # fmt: skip
        if a.recording.expected_sets is not None and tuple(reps) != a.recording.expected_sets:
            problems.append(f"session {a.session_id} ({a.recording.name}): sets {reps} != {a.recording.expected_sets}")
        if a.recording.expected_sets is None:
            classifier_results.add(tuple(reps))
    if len(classifier_results) > 1:
        problems.append(f"the same recording was counted differently: {classifier_results}")
    return problems


# --- Main -------------------------------------------------------------------------------------


def percentile_ms(values: list[float], q: float) -> float:
    """``q`` in [0, 1] of durations in seconds, in milliseconds."""
    return round(benchlib.percentile(values, q) * 1000, 1) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8, help="concurrent users (N)")
    parser.add_argument("--minutes", type=float, default=1.0, help="duration of the load (M)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (4 threads each)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 64 or not 0 < args.minutes <= 30:
        parser.error("bounded: 1-64 users, at most 30 minutes")

    benchlib.exit_on_sigterm()
    catalogue = recordings()
    workdir = Path(tempfile.mkdtemp(prefix="fitness-load-"))
    stats = Stats()
    accepted: list[Accepted] = []
    base_db = os.environ.get("DATABASE_URL", "")
    with contextlib.ExitStack() as cleanup:
        if is_postgres(base_db):
            database_url = cleanup.enter_context(benchlib.bench_database(base_db, f"load_{os.getpid()}"))
        else:
            database_url = f"sqlite:///{workdir / 'db.sqlite3'}"
        environment = Environment(args, workdir, database_url)
        cleanup.callback(environment.stop)  # before the database is dropped
        environment.setup()
        environment.start()
        database, broker = environment.database_url().split(":")[0], environment.broker_url().split(":")[0]
        log(f"load: {args.users} users for {args.minutes:g} min on 127.0.0.1:{environment.port} ({database}, {broker})")
        started = time.monotonic()
        deadline = started + args.minutes * 60
        run = Run(environment.port, deadline, catalogue, stats, accepted)
        threads = [threading.Thread(target=simulate_user, args=(i, run), daemon=True) for i in range(args.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        log(f"load over after {elapsed:.1f} s; waiting for the worker to count every accepted upload ...")
        problems, drained = verify(environment, accepted)

    total_requests = sum(len(v) for v in stats.latencies.values())
    uploads = len(accepted)
    figures = {
        "users": args.users,
        "minutes": args.minutes,
        "database": environment.database_url().split(":")[0],
        "broker": environment.broker_url().split(":")[0],
        "requests": total_requests,
        "throughput_rps": round(total_requests / elapsed, 1),
        "uploads_accepted": uploads,
        "uploads_per_min": round(uploads / (elapsed / 60), 1),
        "retries_answered_200": stats.statuses[("POST sessions (retry)", 200)],
        "counted_done": drained["statuses"].get("done", 0),
        "drain_after_load_s": round(drained["drain_s"], 1),
        "counted_per_s": round(drained["statuses"].get("done", 0) / (elapsed + drained["drain_s"]), 2),
        "errors": len(stats.errors),
        "lost_or_doubled": len(problems),
        "latency_ms": {
            name: {"n": len(v), "p50": percentile_ms(v, 0.5), "p95": percentile_ms(v, 0.95)}
            for name, v in sorted(stats.latencies.items())
        },
    }
    print(json.dumps(figures, indent=2))  # noqa: T201 - the report
    for line in stats.errors[:20] + problems[:20]:
        log(f"  ! {line}")
    log(
        f"N={args.users} users, M={args.minutes:g} min: {total_requests} requests "
        f"({figures['throughput_rps']}/s), {uploads} uploads accepted ({figures['uploads_per_min']}/min), "
        f"{figures['counted_done']} counted ({figures['counted_per_s']}/s; the last "
        f"{figures['drain_after_load_s']} s after the load), "
        f"{len(stats.errors)} errors, {len(problems)} lost/doubled/wrong"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if stats.errors or problems else 0


if __name__ == "__main__":
    sys.exit(main())
