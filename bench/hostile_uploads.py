"""Fault injection on loopback: an attacker uploads hostile recordings through the HTTP API
while a normal user keeps uploading real sessions; memory and the normal user's latency hold.

    make hostile
    .venv/bin/python bench/hostile_uploads.py [--copies 3] [--attackers 4] [--no-write]

The servers are load_test's (``bench/load_test.py``): a throw-away database (SQLite in a
temporary folder, or a new PostgreSQL database beside ``DATABASE_URL``'s), the broker of
``CELERY_BROKER_URL`` on a queue of its own (default: the embedded filesystem broker),
gunicorn with 2 workers (4 threads each) on 127.0.0.1 and one Celery worker with the
prefork pool and one pool process, as ``make run`` runs it.

Hostile inputs (``--copies`` of each, sent by ``--attackers`` threads at once, one attacker
account): time gaps (a JSON sample 10 days on, a real Exermote file whose last row is a day
later, a CaRa CSV with a 2-day gap), values beyond float32 (1e39 in a real Exermote file,
1e300 in a canonical CSV), bombs (20 MB of one-number JSON rows, just under the upload
limit; a gzip bomb of 1 GiB; JSON nested 100,000 deep), padding (a CSV header padded with
1 MiB of spaces, a 10 MiB cell). After them an admin uploads the shipped model with its first
Conv1D set to 2,000,000 filters (a 400 naming its size, quickly, the web worker's RSS flat).
Meanwhile a normal user uploads a real Exermote session
every ``--period`` seconds and polls it until ``done``: first alone (the baseline), then
during the attack.

Measured: peak RSS of every gunicorn and Celery process (VmHWM, and VmRSS sampled every
100 ms, from /proc); each hostile upload's status and message, and for an accepted one its
session's final status and error; the normal user's upload-to-done latency (p50, p95, max),
baseline vs attack. Exits 1 unless every hostile upload is refused (4xx naming the problem,
nothing echoed) or ends ``done``/``failed`` with a reason, the peaks stay under the bounds
below, and the normal user's p95 under attack is at most the baseline's + 5 s. Results go to
``bench/results.json`` under ``"hostile_uploads"`` (not with ``--no-write``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import os
import queue
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
import numpy as np
from benchlib import log
from load_test import PASSWORD, Client, Environment, Recording, Stats, is_postgres

#: Peak RSS bounds (MiB), from two runs on a 2-CPU machine (SQLite + filesystem broker, and
#: PostgreSQL + Redis). A gunicorn worker holds about 220 MiB after real uploads and peaked at
#: 480-550 MiB while parsing 20 MB JSON bombs on two of its threads at once (the streamed parse
#: keeps ~8 bytes a number plus the upload); 1 GiB leaves about twice the measured peak.
WEB_PEAK_MIB = 1024
#: The pool process holds TensorFlow and the model: 780-790 MiB after its first session. Every
#: hostile input here is refused before it is stored, so it only counts real sessions. 1.5 GiB
#: is also where Celery replaces it after a task (CELERY_WORKER_MAX_MEMORY_PER_CHILD).
WORKER_POOL_PEAK_MIB = 1536
#: The Celery parent never loads TensorFlow (it forks the pool): about 200 MiB measured.
WORKER_MAIN_PEAK_MIB = 512
#: The normal user's p95 upload-to-done latency under attack: at most the baseline's plus this.
LATENCY_SLACK_S = 5.0
SAMPLE_EVERY_S = 0.1
POLL_S = 0.1
SESSION_TIMEOUT_S = 120
#: At most this many bytes of a refusal: a 400 never quotes a whole hostile cell back.
MAX_REFUSAL_BYTES = 2000
EXERMOTE_TIME = "%Y-%m-%d %H:%M:%S:%f"


# --- Hostile inputs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    recording: Recording  # name, bytes, format
    expect: tuple[str, ...]  # a refusal must contain one of these


def json_with_gap(gap_at_s: float = 864000.0) -> bytes:
    """100 samples at 10 Hz, then one sample at ``gap_at_s`` (default: 10 days)."""
    times = [i / 10 for i in range(100)] + [gap_at_s]
    samples = [[round(float(np.sin(i / 3)), 4), 0.0, 9.8] for i in range(len(times))]
    return json.dumps({"time_s": times, "channels": ["acc_x", "acc_y", "acc_z"], "samples": samples}).encode()


def exermote_last_row_later(path: Path, seconds: float) -> bytes:
    """The real recording with its last row's ``timeStampSaved`` moved ``seconds`` later."""
    lines = path.read_text().splitlines()
    col = lines[0].split(",").index("timeStampSaved")
    last = lines[-1].split(",")
    when = dt.datetime.strptime(last[col], EXERMOTE_TIME).replace(tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    last[col] = when.strftime("%Y-%m-%d %H:%M:%S:") + f"{when.microsecond // 1000:03d}"
    return ("\n".join([*lines[:-1], ",".join(last)]) + "\n").encode()


def exermote_with_cell(path: Path, column: str, row: int, value: str) -> bytes:
    """The real recording with data row ``row`` of ``column`` replaced by ``value``."""
    lines = path.read_text().splitlines()
    col = lines[0].split(",").index(column)
    cells = lines[row].split(",")
    cells[col] = value
    lines[row] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode()


def cara_with_gap(rows: int = 3000, gap_s: float = 2 * 86400.0, seed: int = 0) -> bytes:
    """A CaRa-format CSV (unix ms, acc x/y/z, gyro x/y/z; no header) at ~100 Hz, its last row ``gap_s`` later."""
    rng = np.random.default_rng(seed)
    stamps = 1_700_000_000_000 + np.cumsum(rng.integers(8, 13, size=rows))  # 8-12 ms steps
    stamps[-1] += int(gap_s * 1000)
    t = np.arange(rows) / 100
    acc = np.column_stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t), 9.81 + 0.1 * np.sin(t)])
    gyro = 0.5 * np.column_stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t), np.zeros(rows)])
    return "".join(
        f"{s}," + ",".join(f"{v:.4f}" for v in (*a, *g)) + "\n" for s, a, g in zip(stamps, acc, gyro, strict=True)
    ).encode()


def csv_rows(n: int = 400) -> list[str]:
    """A canonical CSV at 10 Hz (header first)."""
    return ["time_s,acc_x,acc_y,acc_z"] + [f"{i / 10:.1f},{np.sin(i / 5):.4f},0.2,9.8" for i in range(n)]


def csv_with_cell(row: int, value: str) -> bytes:
    rows = csv_rows()
    cells = rows[row].split(",")
    cells[2] = value  # acc_y
    rows[row] = ",".join(cells)
    return ("\n".join(rows) + "\n").encode()


def json_bomb(max_bytes: int) -> bytes:
    """The canonical JSON of one-number rows at 1000 Hz, the most numbers per byte: at most
    ``max_bytes`` (and 20 MB) long."""
    head, tail = b'{"sample_rate_hz":1000,"channels":["acc_x"],"samples":[', b"]}"
    target = min(20_000_000, max_bytes)
    n = (target - len(head) - len(tail) + 1) // 6  # "[d.d]," is 6 bytes, the last without a comma
    body = ",".join(f"[{(i % 97) / 10}]" for i in range(n)).encode()
    data = head + body + tail
    assert len(data) <= target, len(data)
    return data


def gzip_bomb(gib: int = 1) -> bytes:
    """``gib`` GiB of CSV-looking text as gzip, about 2 MiB: 1 MiB compressed once, its member repeated."""
    member = gzip.compress(b"0.1,0.2,0.3\n" * ((1 << 20) // 12), compresslevel=9, mtime=0)
    return member * (1024 * gib)


def deep_json(depth: int = 100_000) -> bytes:
    return b'{"channels":["acc_x"],"samples":' + b"[" * depth + b"]" * depth + b"}"


def padded_header(spaces: int = 1 << 20) -> bytes:
    rows = csv_rows()
    rows[0] += " " * spaces
    return ("\n".join(rows) + "\n").encode()


def huge_cell(size: int = 10 << 20) -> bytes:
    return csv_with_cell(3, "x" * size)


def hostile_inputs(exermote: Path, max_upload_bytes: int) -> list[Hostile]:
    def item(name: str, data: bytes, fmt: str, *expect: str) -> Hostile:
        return Hostile(Recording(name, data, "", None, fmt=fmt), expect)

    jump, xacc = "timestamps jump by", "Device: xAcceleration"
    beyond = "beyond the range of a sample"
    return [
        item("gap: JSON sample 10 days later", json_with_gap(), "json", jump),
        item("gap: Exermote last row a day later", exermote_last_row_later(exermote, 86400), "exermote", jump),
        item("gap: CaRa CSV with a 2-day gap", cara_with_gap(), "cara", jump),
        item("overflow: Exermote cell 1e39", exermote_with_cell(exermote, xacc, 5, "1e39"), "exermote", beyond),
        item("overflow: CSV cell 1e300", csv_with_cell(8, "1e300"), "csv", beyond),
        # One channel: parsed whole (the memory under test), then refused as not countable.
        item("bomb: 20 MB JSON of one-number rows", json_bomb(max_upload_bytes), "json", "lacks the channels"),
        item("bomb: gzip, 1 GiB unpacked", gzip_bomb(), "csv", "binary", "first line"),
        item("bomb: JSON nested 100,000 deep", deep_json(), "json", "nested deeper than"),
        item("padding: CSV header + 1 MiB of spaces", padded_header(), "csv", "longer than 64 KiB"),
        item("padding: CSV cell of 10 MiB", huge_cell(), "csv", "non-numeric value"),
    ]


# --- Memory of the servers -------------------------------------------------------------------


@dataclass
class ProcessPeak:
    kind: str
    hwm_mib: float = 0.0  # VmHWM, the kernel's peak (the last read before the process ended)
    rss_max_mib: dict[str, float] = field(default_factory=dict)  # sampled VmRSS, per phase


class RssSampler(threading.Thread):
    """Every SAMPLE_EVERY_S: VmRSS and VmHWM of gunicorn's master and workers and of the Celery
    worker's main and pool processes (replaced processes are new pids, kept apart)."""

    def __init__(self, gunicorn_pid: int, celery_pid: int) -> None:
        super().__init__(daemon=True)
        self.roots = {"web master": gunicorn_pid, "worker main": celery_pid}
        self.child_kind = {"web master": "web worker", "worker main": "worker pool"}
        self.peaks: dict[int, ProcessPeak] = {}
        self.phase = "startup"
        self.stop = threading.Event()

    def processes(self) -> list[tuple[int, str]]:
        out = []
        for kind, pid in self.roots.items():
            out.append((pid, kind))
            with contextlib.suppress(OSError):
                out += [(child, self.child_kind[kind]) for child in benchlib.children(pid)]
        return out

    def sample(self) -> None:
        for pid, kind in self.processes():
            try:
                status = benchlib.proc_status(pid)
            except (OSError, ValueError):
                continue  # it ended between the listing and the read
            peak = self.peaks.setdefault(pid, ProcessPeak(kind))
            peak.hwm_mib = max(peak.hwm_mib, status.get("VmHWM", 0.0))
            peak.rss_max_mib[self.phase] = max(peak.rss_max_mib.get(self.phase, 0.0), status.get("VmRSS", 0.0))

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY_S):
            self.sample()

    def by_kind(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for peak in self.peaks.values():
            kind = out.setdefault(peak.kind, {"processes": 0, "peak_mib": 0.0, "sampled_max_mib": {}})
            kind["processes"] += 1
            kind["peak_mib"] = max(kind["peak_mib"], peak.hwm_mib)
            for phase, rss in peak.rss_max_mib.items():
                kind["sampled_max_mib"][phase] = max(kind["sampled_max_mib"].get(phase, 0.0), rss)
        return dict(sorted(out.items()))


# --- Users ------------------------------------------------------------------------------------


def login(port: int, prefix: str) -> str:
    """A new account's access token."""
    client = Client(port, Stats())
    username = f"{prefix}-{uuid.uuid4().hex[:6]}"
    credentials = {"username": username, "password": PASSWORD}
    client.request("POST auth/register", "POST", "/api/v1/auth/register/", body=credentials, expect=(201,))
    status, tokens = client.request("POST auth/token", "POST", "/api/v1/auth/token/", body=credentials)
    if status != 200:
        raise SystemExit(f"cannot log in as {username}: {status} {tokens}")
    return tokens["access"]


def wait_counted(client: Client, session_id: str, started: float) -> tuple[str, str]:
    """Poll the session until ``done`` or ``failed``; its (status, error)."""
    while time.perf_counter() - started < SESSION_TIMEOUT_S:
        status, body = client.request("GET session", "GET", f"/api/v1/sessions/{session_id}/")
        if status == 200 and body["status"] in ("done", "failed"):
            return body["status"], body.get("error") or ""
        time.sleep(POLL_S)
    return "timeout", f"not counted after {SESSION_TIMEOUT_S} s"


@dataclass
class NormalUser:
    """Uploads a real Exermote session every ``period_s`` and waits for it to be counted."""

    port: int
    token: str
    sessions: list[bytes]
    period_s: float
    latencies_s: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    uploads: int = 0

    def once(self) -> None:
        """One upload on a new connection, as a phone opens one per upload (gunicorn closes
        keep-alive connections idle for 2 s), polled on that connection until counted."""
        client = Client(self.port, Stats())
        client.token = self.token
        recording = Recording(
            f"exermote-{self.uploads}", self.sessions[self.uploads % len(self.sessions)], "", None, fmt="exermote"
        )
        self.uploads += 1
        started = time.perf_counter()
        status, body = client.upload(recording, str(uuid.uuid4()))
        if status != 202:
            self.problems.append(f"normal upload answered {status}: {'; '.join(client.stats.errors)[:200]}")
            return
        final, error = wait_counted(client, body["id"], started)
        if final != "done":
            self.problems.append(f"normal session {body['id']} ended {final}: {error[:200]}")
            return
        self.latencies_s.append(time.perf_counter() - started)

    def run_until(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            self.once()
            stop.wait(max(0.0, self.period_s - (time.perf_counter() - started)))


@dataclass
class Outcome:
    name: str
    http_status: int
    seconds: float
    message: str = ""
    response_bytes: int = 0
    session: str = ""
    final: str = ""  # an accepted upload's session: done / failed / timeout
    error: str = ""


def attack(port: int, token: str, work: queue.Queue, out: list[Outcome]) -> None:
    """Send hostile uploads from ``work`` until it is empty (a new connection each: a refusal
    may close it before the body is read)."""
    while True:
        try:
            hostile: Hostile = work.get_nowait()
        except queue.Empty:
            return
        client = Client(port, Stats())
        client.token = token
        started = time.perf_counter()
        status, body = client.upload(hostile.recording, str(uuid.uuid4()))
        text = json.dumps(body) if body is not None else ""
        outcome = Outcome(hostile.recording.name, status, time.perf_counter() - started, text[:300], len(text))
        if status == 202:
            outcome.session = body["id"]
            outcome.final, outcome.error = wait_counted(client, body["id"], started)
        out.append(outcome)


def judge(outcome: Outcome, hostile: Hostile) -> str | None:
    """Why this outcome is not acceptable, or None."""
    if outcome.http_status == 202:
        if outcome.final == "done" or (outcome.final == "failed" and outcome.error.strip()):
            return None
        return f"accepted, then {outcome.final or 'never counted'}: {outcome.error[:200]!r}"
    if not 400 <= outcome.http_status < 500:
        return f"answered {outcome.http_status}: {outcome.message[:200]!r}"
    if not any(word in outcome.message for word in hostile.expect):
        return f"{outcome.http_status} without naming the problem ({' / '.join(hostile.expect)}): {outcome.message!r}"
    if outcome.response_bytes > MAX_REFUSAL_BYTES:
        return f"{outcome.http_status} of {outcome.response_bytes} bytes (the input is echoed)"
    return None


# --- Slow webhook receiver (issue 29) -----------------------------------------------------------

#: The slow receiver sends its answer one byte every this many seconds (each well inside the
#: 5 s read timeout, the whole status line far beyond the attempt's 10 s deadline).
DRIBBLE_EVERY_S = 2.0
#: An attempt may last its deadline plus this (the watcher thread, loaded machine).
ATTEMPT_SLACK_S = 2.0
WEBHOOKS_QUEUE_SUFFIX = "-webhooks"


def prepare_slow_receiver(environment: Environment) -> None:
    """Before the servers start: webhook deliveries on a queue of their own (compose's
    worker-webhooks; see :func:`slow_receiver_attack`), loopback receivers allowed."""
    environment.env["CELERY_WEBHOOKS_QUEUE"] = environment.queue + WEBHOOKS_QUEUE_SUFFIX
    environment.env["FITNESS_WEBHOOKS_ALLOW_PRIVATE"] = "true"


class Dribbler(threading.Thread):
    """A receiver on 127.0.0.1 that answers one byte every DRIBBLE_EVERY_S, a thread per POST."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/slow"
        self.stop = threading.Event()
        self.posts = 0

    def serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            conn.recv(65536)
            for byte in self.ANSWER:
                if self.stop.wait(DRIBBLE_EVERY_S):
                    return
                conn.sendall(bytes([byte]))

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.posts += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=5)
        self.listener.close()


def start_webhooks_worker(environment: Environment) -> None:
    """A prefork worker on the webhooks queue only, as compose's worker-webhooks (one pool process)."""
    queue_name = environment.env["CELERY_WEBHOOKS_QUEUE"]
    log_path = environment.workdir / "webhooks-worker.log"
    cmd = [
        str(benchlib.ROOT / ".venv" / "bin" / "celery"), "-A", "workers", "worker", "--pool=prefork",
        "--concurrency=1", "-l", "info", "-Q", queue_name, "-n", f"{queue_name}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(  # noqa: S603 - our own program from the virtual environment
            cmd, cwd=benchlib.ROOT, env=environment.env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    environment.procs.append(("webhooks worker", proc))
    deadline = time.monotonic() + 90
    while " ready." not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the webhooks worker did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)


def slow_receiver_attack(args, environment: Environment, normal: NormalUser, baseline_s: list[float]) -> dict:
    """An attacker subscribes the most webhooks allowed to a receiver that dribbles its answer,
    uploads a session (one delivery per webhook) and calls redeliver on each delivery every
    second, while the normal user keeps uploading. Deliveries run on their own worker (compose's
    shape): the normal user's p95 must stay within the baseline's + LATENCY_SLACK_S, every
    attempt must end by the deadline, and no redeliver of a pending delivery may be accepted."""
    from django.conf import settings

    port = environment.port
    start_webhooks_worker(environment)
    dribbler = Dribbler()
    dribbler.start()
    attacker = Client(port, Stats())
    attacker.token = login(port, "hooker")
    hooks = []
    for i in range(settings.FITNESS_WEBHOOKS_MAX_PER_USER + 1):
        status, body = attacker.request(
            "POST webhooks", "POST", "/api/v1/webhooks/",
            body={"url": f"{dribbler.url}/{i}", "events": ["session.done"]}, expect=(201, 400),
        )  # fmt: skip
        if status == 201:
            hooks.append(body["id"])
    log(f"slow receiver: {len(hooks)} webhooks to a receiver dribbling a byte every {DRIBBLE_EVERY_S:g} s ...")
    status, body = attacker.upload(Recording("hooked", normal.sessions[0], "", None, fmt="exermote"), str(uuid.uuid4()))
    problems = [] if status == 202 else [f"the attacker's upload answered {status}"]
    if status == 202:
        wait_counted(attacker, body["id"], time.perf_counter())

    normal.latencies_s.clear()
    stop = threading.Event()
    user = threading.Thread(target=normal.run_until, args=(stop,), daemon=True)
    user.start()
    redeliver_codes: dict[int, int] = {}
    accepted_while_pending = 0
    ends = time.monotonic() + args.min_attack
    while time.monotonic() < ends:
        for hook in hooks:
            _, page = attacker.request("GET deliveries", "GET", f"/api/v1/webhooks/{hook}/deliveries/")
            for delivery in (page or {}).get("results", []):
                path = f"/api/v1/webhooks/{hook}/deliveries/{delivery['id']}/redeliver/"
                code, _ = attacker.request("POST redeliver", "POST", path, expect=(202, 409, 429))
                redeliver_codes[code] = redeliver_codes.get(code, 0) + 1
                accepted_while_pending += code == 202 and delivery["status"] == "pending"
        time.sleep(1.0)
    stop.set()
    user.join()
    dribbler.close()
    under_attack = list(normal.latencies_s)

    durations_ms = []
    for hook in hooks:
        _, page = attacker.request("GET deliveries", "GET", f"/api/v1/webhooks/{hook}/deliveries/")
        for delivery in (page or {}).get("results", []):
            durations_ms += [a["duration_ms"] for a in delivery["attempts"]]
    allowed_ms = (settings.FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S + ATTEMPT_SLACK_S) * 1000
    if durations_ms and max(durations_ms) > allowed_ms:
        problems.append(f"a delivery attempt took {max(durations_ms)} ms (deadline + slack: {allowed_ms:.0f} ms)")
    if not durations_ms:
        problems.append("no delivery attempt was logged")
    if accepted_while_pending:
        problems.append(f"{accepted_while_pending} redeliveries of a pending delivery were accepted")
    allowed_p95, late = judge_latency(baseline_s, under_attack)
    problems += late
    return {
        "webhooks": len(hooks),
        "receiver_posts": dribbler.posts,
        "attempts_logged": len(durations_ms),
        "max_attempt_ms": max(durations_ms, default=0),
        "redeliver_answers": {str(k): v for k, v in sorted(redeliver_codes.items())},
        "normal_latency_ms": latency_summary(under_attack),
        "allowed_p95_ms": round(allowed_p95 * 1000, 1),
        "problems": problems,
    }


# --- Main -------------------------------------------------------------------------------------


def latency_summary(values: list[float]) -> dict:
    return benchlib.summary_ms(values) if values else {"n": 0}


@dataclass
class Phases:
    baseline_s: list[float]  # the normal user's upload-to-done latencies, alone
    attack_s: list[float]  # ... and during the attack
    outcomes: list[Outcome]
    attack_wall_s: float


def run_phases(args, port: int, catalogue: list[Hostile], normal: NormalUser, sampler: RssSampler) -> Phases:
    """Warm-up, baseline (the normal user alone), attack (the normal user and the attackers)."""
    attacker_token = login(port, "attacker")
    sampler.phase = "warm-up"
    log("warm-up: the first session loads TensorFlow in the pool process ...")
    normal.once()
    normal.latencies_s.clear()

    sampler.phase = "baseline"
    log(f"baseline: the normal user alone for {args.baseline:g} s ...")
    stop = threading.Event()
    user = threading.Thread(target=normal.run_until, args=(stop,), daemon=True)
    user.start()
    time.sleep(args.baseline)
    stop.set()
    user.join()
    baseline = list(normal.latencies_s)
    normal.latencies_s.clear()

    sampler.phase = "attack"
    work: queue.Queue = queue.Queue()
    items = [h for h in catalogue for _ in range(args.copies)]
    random.Random(21).shuffle(items)  # noqa: S311 - an order, not a secret
    for h in items:
        work.put(h)
    log(f"attack: {len(items)} hostile uploads from {args.attackers} threads, the normal user every {args.period:g} s")
    outcomes: list[Outcome] = []
    started = time.monotonic()
    stop = threading.Event()
    user = threading.Thread(target=normal.run_until, args=(stop,), daemon=True)
    user.start()
    attackers = [
        threading.Thread(target=attack, args=(port, attacker_token, work, outcomes), daemon=True)
        for _ in range(args.attackers)
    ]
    for t in attackers:
        t.start()
    for t in attackers:
        t.join()
    attack_wall_s = time.monotonic() - started
    stop.wait(max(0.0, args.min_attack - attack_wall_s))  # enough normal sessions under attack
    stop.set()
    user.join()
    sampler.phase = "after"
    return Phases(baseline, list(normal.latencies_s), outcomes, attack_wall_s)


def judge_inputs(catalogue: list[Hostile], outcomes: list[Outcome], copies: int) -> tuple[dict, list[str]]:
    """Per hostile input: its answers, and what is wrong with them."""
    inputs, problems = {}, []
    for h in catalogue:
        mine = [o for o in outcomes if o.name == h.recording.name]
        verdicts = [judge(o, h) for o in mine]
        problems += [f"{h.recording.name}: {v}" for v in verdicts if v]
        if len(mine) != copies:
            problems.append(f"{h.recording.name}: {len(mine)} answers for {copies} uploads")
        statuses: dict[str, int] = {}
        for o in mine:
            key = str(o.http_status) if o.http_status != 202 else f"202 -> {o.final}"
            statuses[key] = statuses.get(key, 0) + 1
        inputs[h.recording.name] = {
            "format": h.recording.fmt,
            "bytes": len(h.recording.data),
            "uploads": len(mine),
            "statuses": statuses,
            "max_response_s": round(max((o.seconds for o in mine), default=0.0), 2),
            "message": next((o.message[:200] for o in mine if o.http_status != 202), ""),
            "errors": sorted({o.error[:200] for o in mine if o.error}),
            "ok": not any(verdicts),
        }
    return inputs, problems


BOUNDS_MIB = {
    "web master": WEB_PEAK_MIB,
    "web worker": WEB_PEAK_MIB,
    "worker main": WORKER_MAIN_PEAK_MIB,
    "worker pool": WORKER_POOL_PEAK_MIB,
}


# --- An oversized model uploaded by an admin (issue 29, item 3) ------------------------------

#: Filters of the first Conv1D in the shipped model's config.json: 2.8 MB on disk, gigabytes if built.
MODEL_BOMB_FILTERS = 2_000_000
#: A web worker's sampled RSS may grow by at most this (MiB) while refusing the oversized model.
MODEL_BOMB_WEB_GROWTH_MIB = 100
MODEL_BOMB_TIMEOUT_S = 30


def oversized_model(filters: int = MODEL_BOMB_FILTERS) -> bytes:
    """The shipped default.keras with its first Conv1D set to ``filters`` (weights unchanged)."""
    import io
    import zipfile

    from inference.model import DEFAULT_KERAS_PATH

    out = io.BytesIO()
    with zipfile.ZipFile(DEFAULT_KERAS_PATH) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][1]["config"]["layers"][1]["config"]["filters"] = filters
                data = json.dumps(config).encode()
            zout.writestr(item.filename, data)
    return out.getvalue()


def _web_worker_rss(sampler: RssSampler, phase: str) -> float:
    """The largest sampled RSS (MiB) of any web worker in ``phase``."""
    return max((p.rss_max_mib.get(phase, 0.0) for p in sampler.peaks.values() if p.kind == "web worker"), default=0.0)


def oversized_model_attack(port: int, sampler: RssSampler) -> dict:
    """An admin uploads the oversized model to ``POST /api/v1/model-versions/``: it must be a 400
    naming the problem within MODEL_BOMB_TIMEOUT_S, and no web worker may grow by more than
    MODEL_BOMB_WEB_GROWTH_MIB (the issue's web process went from 542 to 2,433 MiB)."""
    from fitness.accounts.models import User

    username = f"admin-{uuid.uuid4().hex[:6]}"
    credentials = {"username": username, "password": PASSWORD}
    client = Client(port, Stats())
    client.request("POST auth/register", "POST", "/api/v1/auth/register/", body=credentials, expect=(201,))
    User.objects.filter(username=username).update(is_staff=True)
    _, tokens = client.request("POST auth/token", "POST", "/api/v1/auth/token/", body=credentials)
    client.token = tokens["access"]
    data = oversized_model()
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bomb.keras"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    sampler.sample()
    before = _web_worker_rss(sampler, sampler.phase)
    sampler.phase = "oversized model"
    started = time.monotonic()
    status, answer = client.request(
        "POST model-versions",
        "POST",
        "/api/v1/model-versions/",
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        expect=(400,),
    )
    seconds = time.monotonic() - started
    time.sleep(3 * SAMPLE_EVERY_S)
    sampler.sample()
    during = _web_worker_rss(sampler, "oversized model")
    message = json.dumps(answer)[:MAX_REFUSAL_BYTES] if answer is not None else ""
    problems = []
    if status != 400 or "parameters" not in message:
        problems.append(f"the oversized model got {status}, not a 400 naming its size: {message[:200]}")
    if seconds > MODEL_BOMB_TIMEOUT_S:
        problems.append(f"the oversized model took {seconds:.1f} s to refuse (> {MODEL_BOMB_TIMEOUT_S} s)")
    if during > before + MODEL_BOMB_WEB_GROWTH_MIB:
        problems.append(f"a web worker grew from {before:.0f} to {during:.0f} MiB on the oversized model")
    return {
        "bytes": len(data),
        "filters": MODEL_BOMB_FILTERS,
        "status": status,
        "message": message,
        "response_s": round(seconds, 3),
        "web_worker_rss_mib": {"before": round(before), "during": round(during)},
        "problems": problems,
    }


def judge_memory(memory: dict[str, dict]) -> list[str]:
    problems = []
    for kind, bound in BOUNDS_MIB.items():
        figures = memory.get(kind)
        if figures is None:
            problems.append(f"no {kind} process was seen")
            continue
        figures["bound_mib"] = bound
        if figures["peak_mib"] > bound:
            problems.append(f"{kind} peak RSS {figures['peak_mib']:.0f} MiB > {bound} MiB")
    return problems


def judge_latency(baseline: list[float], under_attack: list[float]) -> tuple[float, list[str]]:
    """The allowed p95 under attack (s), and whether it held."""
    allowed = (benchlib.percentile(baseline, 0.95) if baseline else 0.0) + LATENCY_SLACK_S
    if len(baseline) < 3 or len(under_attack) < 3:
        return allowed, [f"too few normal sessions counted: {len(baseline)} alone, {len(under_attack)} under attack"]
    p95 = benchlib.percentile(under_attack, 0.95)
    if p95 > allowed:
        return allowed, [
            f"normal p95 under attack {p95:.2f} s > baseline p95 + {LATENCY_SLACK_S:g} s ({allowed:.2f} s)"
        ]
    return allowed, []


def measure(args, environment: Environment, files: list[Path]) -> dict:
    benchlib.django_setup(environment.database_url(), environment.broker_url(), Path(environment.env["MEDIA_ROOT"]))
    from django.conf import settings

    max_upload = settings.FITNESS_MAX_UPLOAD_BYTES
    started = time.monotonic()
    log("building the hostile inputs ...")
    catalogue = hostile_inputs(files[0], max_upload)
    environment.start()
    (gunicorn,) = (p for name, p in environment.procs if name == "gunicorn")
    (celery,) = (p for name, p in environment.procs if name == "worker")
    sampler = RssSampler(gunicorn.pid, celery.pid)
    sampler.start()
    port = environment.port
    try:
        normal = NormalUser(port, login(port, "normal"), [p.read_bytes() for p in files[:8]], args.period)
        phases = run_phases(args, port, catalogue, normal, sampler)
        sampler.phase = "slow receiver"
        slow_receiver = slow_receiver_attack(args, environment, normal, phases.baseline_s)
        sampler.sample()
        model_attack = oversized_model_attack(port, sampler)
    finally:
        sampler.stop.set()
        sampler.join()

    inputs, problems = judge_inputs(catalogue, phases.outcomes, args.copies)
    memory = sampler.by_kind()
    problems += normal.problems + judge_memory(memory)
    allowed_p95, late = judge_latency(phases.baseline_s, phases.attack_s)
    problems += late + [f"slow receiver: {p}" for p in slow_receiver["problems"]] + model_attack["problems"]
    return {
        "database": environment.database_url().split(":")[0],
        "broker": environment.broker_url().split(":")[0],
        "web": f"gunicorn -w {args.web_workers} gthread (4 threads)",
        "worker": " ".join(environment.worker_pool),
        "copies_of_each": args.copies,
        "attackers": args.attackers,
        "normal_period_s": args.period,
        "max_upload_bytes": max_upload,
        "inputs": inputs,
        "peak_rss_mib": memory,
        "normal_latency_ms": {
            "baseline": latency_summary(phases.baseline_s),
            "attack": latency_summary(phases.attack_s),
            "allowed_attack_p95_ms": round(allowed_p95 * 1000, 1),
        },
        "oversized_model": model_attack,
        "attack_s": round(phases.attack_wall_s, 1),
        "slow_receiver": slow_receiver,
        "run_s": round(time.monotonic() - started, 1),
        "problems": problems,
        "machine": benchlib.machine(),
        "measured_at": benchlib.now_iso(),
    }


def print_report(payload: dict) -> None:
    out = [
        f"hostile uploads on {payload['database']} + {payload['broker']}: {payload['web']}, "
        f"celery {payload['worker']}; {payload['copies_of_each']} of each input from {payload['attackers']} "
        f"attackers, {payload['attack_s']} s"
    ]
    for name, figures in payload["inputs"].items():
        statuses = ", ".join(f"{n} x {s}" for s, n in figures["statuses"].items())
        reason = figures["message"] or "; ".join(figures["errors"])
        out.append(
            f"  {'ok ' if figures['ok'] else 'BAD'} {name} ({figures['bytes'] / 2**20:.2f} MiB): {statuses}, "
            f"<= {figures['max_response_s']} s: {reason[:150]}"
        )
    out.append("peak RSS (MiB; VmHWM, and VmRSS sampled every 100 ms in baseline / attack):")
    for kind, figures in payload["peak_rss_mib"].items():
        sampled = figures["sampled_max_mib"]
        out.append(
            f"  {kind}: {figures['peak_mib']:.0f} (bound {figures.get('bound_mib', '-')}), "
            f"{figures['processes']} process(es), sampled {sampled.get('baseline', 0):.0f} / "
            f"{sampled.get('attack', 0):.0f}"
        )
    lat = payload["normal_latency_ms"]
    for phase in ("baseline", "attack"):
        s = lat[phase]
        if s["n"]:
            out.append(
                f"normal upload -> done, {phase}: n={s['n']} p50 {s['p50_ms'] / 1000:.2f} s, "
                f"p95 {s['p95_ms'] / 1000:.2f} s, max {s['max_ms'] / 1000:.2f} s"
            )
    out.append(f"  (allowed p95 under attack: {lat['allowed_attack_p95_ms'] / 1000:.2f} s)")
    slow = payload["slow_receiver"]
    s = slow["normal_latency_ms"]
    out.append(
        f"slow receiver: {slow['webhooks']} webhooks, {slow['attempts_logged']} attempts logged "
        f"(longest {slow['max_attempt_ms']} ms), redeliver answers {slow['redeliver_answers']}; normal "
        + (f"n={s['n']} p50 {s['p50_ms'] / 1000:.2f} s, p95 {s['p95_ms'] / 1000:.2f} s" if s["n"] else "none counted")
    )
    bomb = payload["oversized_model"]
    out.append(
        f"oversized model by an admin ({bomb['filters']:,} filters, {bomb['bytes'] / 2**20:.1f} MiB): "
        f"{bomb['status']} in {bomb['response_s']} s, web worker {bomb['web_worker_rss_mib']['before']} -> "
        f"{bomb['web_worker_rss_mib']['during']} MiB: {bomb['message'][:150]}"
    )
    out += [f"  ! {p}" for p in payload["problems"]] or ["no problems"]
    print("\n".join(out))  # noqa: T201 - the report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=3, help="uploads of each hostile input")
    parser.add_argument("--attackers", type=int, default=4, help="threads sending them at once")
    parser.add_argument("--period", type=float, default=3.0, help="seconds between the normal user's uploads")
    parser.add_argument("--baseline", type=float, default=25.0, help="seconds of the normal user alone")
    parser.add_argument("--min-attack", type=float, default=25.0, help="the normal user's least time under attack")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (4 threads each)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.json")
    args = parser.parse_args(argv)
    if not 1 <= args.copies <= 10 or not 1 <= args.attackers <= 16 or args.web_workers < 2:
        parser.error("bounded: 1-10 copies, 1-16 attackers, at least 2 web workers")

    benchlib.exit_on_sigterm()
    files = benchlib.require_exermote(1)
    if files is None:
        return benchlib.SKIPPED
    workdir = Path(tempfile.mkdtemp(prefix="fitness-hostile-"))
    base_db = os.environ.get("DATABASE_URL", "")
    try:
        with contextlib.ExitStack() as cleanup:
            if is_postgres(base_db):
                database_url = cleanup.enter_context(benchlib.bench_database(base_db, f"hostile_{os.getpid()}"))
            else:
                database_url = f"sqlite:///{workdir / 'db.sqlite3'}"
            environment = Environment(args, workdir, database_url)
            environment.queue = f"hostile-{os.getpid()}"
            for variable in ("CELERY_TASK_DEFAULT_QUEUE", "CELERY_COUNTING_QUEUE", "CELERY_ADMIN_QUEUE"):
                environment.env[variable] = environment.queue
            environment.worker_pool = ("--pool=prefork", "--concurrency=1")
            prepare_slow_receiver(environment)
            cleanup.callback(environment.stop)  # before the database is dropped
            environment.setup()
            payload = measure(args, environment, files)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_report(payload)
    if not args.no_write:
        benchlib.write_results("hostile_uploads", payload)
    return 1 if payload["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
