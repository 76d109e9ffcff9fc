"""A real HTTP receiver on 127.0.0.1 (a thread), deliveries run eagerly in the test's thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fitness.webhooks import tasks
from fitness.webhooks.models import Subscription


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every request; answers the next code of ``answers`` (200 once they run out).
    ``delay_s`` makes it wait that long before answering (a slow endpoint)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    redirect_to: str = ""


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    lock = threading.Lock()
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = state["receiver"]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                code = receiver.answers.pop(0) if receiver.answers else 200
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            self.send_response(code)
            if receiver.redirect_to:
                self.send_header("Location", receiver.redirect_to)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hooks/fitness?source=test")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def allow_private(settings):
    """Deliveries to this machine's receiver (loopback) are allowed; retries come at once."""
    settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE = True
    settings.FITNESS_WEBHOOKS_RETRY_BACKOFF_S = 0.0
    settings.FITNESS_WEBHOOKS_TIMEOUT_S = 2.0
    return settings


@pytest.fixture
def receiver(allow_private) -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def down_url(allow_private) -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def queued(monkeypatch) -> list[str]:
    """Delivery ids handed to the task (nothing reaches a broker, nothing is sent)."""
    sent: list[str] = []
    monkeypatch.setattr(tasks.deliver, "delay", sent.append)
    return sent


@pytest.fixture
def eager(monkeypatch) -> list[str]:
    """Deliveries run at once in the test's thread (Celery's eager ``apply``: retries too)."""
    sent: list[str] = []

    def run(delivery_id: str) -> None:
        sent.append(delivery_id)
        tasks.deliver.apply(args=[delivery_id])

    monkeypatch.setattr(tasks.deliver, "delay", run)
    return sent


def subscribe(user, url: str, events=("session.done", "session.failed")) -> Subscription:
    """A subscription made straight in the database (the URL is not checked)."""
    return Subscription.objects.create(user=user, url=url, events=list(events), secret="s3cret-" + "x" * 57)
