"""Real processes for fault tests: a Redis server of the test's own (stopped and started at
will), Celery workers on it (killed at will), and the test process publishing to it."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import kombu.pools
import numpy as np
import pytest
from django.db import connection

from fitness.workouts import tasks
from tests.fixtures.celery_worker import celery_command, database_url
from workers.celery import app

REPO = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server")
READY_TIMEOUT_S = 90

#: The synthetic recording's sets as the peak counter counts them (jumping jacks at 1 Hz).
JUMPING_JACK_SETS = [20, 7]


def jumping_jacks_csv(rate_hz: float = 50.0, seconds: float = 40.0) -> bytes:
    """Accelerometer CSV: still, 20 s of jumping jacks at 1 Hz, rest, 7 more, still."""
    t = np.arange(0, seconds, 1 / rate_hz)
    active = ((t > 5) & (t < 25)) | ((t > 30) & (t < 37))
    noise = np.random.default_rng(0).normal(0, 0.05, size=(len(t), 3))
    swing = np.where(active, 4.0 * np.sin(2 * np.pi * 1.0 * t), 0.0)
    out = io.StringIO()
    out.write("time_s,acc_x,acc_y,acc_z\n")
    acc = np.column_stack([0.3 * swing, np.zeros_like(t), 9.81 + swing]) + noise
    for ti, (x, y, z) in zip(t, acc, strict=True):
        out.write(f"{ti:.3f},{x:.4f},{y:.4f},{z:.4f}\n")
    return out.getvalue().encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """``redis-server`` on a free port, keeping nothing on disk; ``stop()`` and ``start()`` again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # as a crash: no goodbye to the clients
            self.proc.wait(timeout=10)
        self.proc = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (fault tests start a Redis of their own)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def reset_publisher() -> None:
    """Close and forget the publishing connections, so that the next task goes to the current
    broker URL. kombu keeps its pools per URL for the whole process: all are dropped, so that
    no closed pool is handed out again (later tests get fresh ones)."""
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def publish_to(monkeypatch):
    """Make the test process publish counting tasks on a queue of the test's own (to ``url``, else
    to the configured broker); returns the queue."""
    queue = f"faults-{uuid.uuid4().hex[:12]}"

    def _switch(url: str | None = None) -> str:
        if url is not None:
            # Celery reads CELERY_BROKER_URL from the environment before its configuration.
            monkeypatch.setenv("CELERY_BROKER_URL", url)
            monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
            app.conf.update(broker_url=url, broker_transport_options={"socket_connect_timeout": 2})
        monkeypatch.setattr(tasks.process_session, "queue", queue, raising=False)
        # Routing options are cached on a task's first apply_async: recompute them with this queue.
        monkeypatch.setattr(tasks.process_session, "_exec_options", None, raising=False)
        reset_publisher()
        return queue

    before = {"broker_url": app.conf.broker_url, "broker_transport_options": app.conf.broker_transport_options}
    yield _switch
    app.conf.update(before)
    reset_publisher()


class Worker:
    """A ``celery worker`` subprocess consuming one queue, with its log."""

    def __init__(self, name: str, log_path: Path, cmd: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> Worker:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while " ready." not in self.log():
            if self.proc.poll() is not None:
                pytest.fail(f"worker {self.name} exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {self.name} not ready in {READY_TIMEOUT_S} s:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        return self

    def kill9(self) -> None:
        """SIGKILL to the worker and everything it started (pool, embedded beat): no warm shutdown."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """The test is over: the worker and everything it started go at once."""
        if self.proc.poll() is None:
            self.kill9()


@pytest.fixture
def start_worker(transactional_db, settings, tmp_path):
    """Start workers on a broker and queue, sharing the test database and MEDIA_ROOT."""
    started: list[Worker] = []

    def _start(name: str, *, broker_url: str, queue: str, beat: bool = False, pool: str = "solo", **env: str) -> Worker:
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "fitness.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "CELERY_BROKER_URL": broker_url,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            # One queue for everything this worker publishes (counting, and the sweep its beat runs).
            "CELERY_COUNTING_QUEUE": queue,
            "CELERY_ADMIN_QUEUE": queue,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        cmd = [
            *celery_command(), "-A", "tests.faults.slow_app", "worker", f"--pool={pool}", "-l", "info",
            "-Q", queue, "-n", f"{name}-{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        if beat:
            cmd += ["-B", "--schedule", str(tmp_path / f"beat-{name}")]
        worker = Worker(name, tmp_path / f"worker-{name}.log", cmd, environment)
        started.append(worker)
        return worker

    yield _start
    for worker in started:
        worker.stop()
