"""Real HTTP receivers on 127.0.0.1 (threads: a normal one and a slow one that dribbles its
answer), deliveries run eagerly in the test's thread."""

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


@dataclass
class Dribbler:
    """A receiver that sends its answer one byte every ``interval_s``: each byte comes well inside
    a read timeout, the whole status line does not. ``connections`` counts the POSTs begun."""

    url: str
    interval_s: float
    connections: int = 0


#: What the dribbler sends, byte by byte (a 200, were it ever complete).
DRIBBLED_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@contextlib.contextmanager
def running_dribbler(interval_s: float = 1.5) -> Iterator[Dribbler]:
    """A slow receiver on 127.0.0.1 (a free port): a thread per connection reads the request and
    dribbles :data:`DRIBBLED_ANSWER`; everything stops on exit."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    dribbler = Dribbler(url=f"http://127.0.0.1:{listener.getsockname()[1]}/slow", interval_s=interval_s)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)  # the request (small: headers and a JSON event)
                for byte in DRIBBLED_ANSWER:
                    if stop.wait(interval_s):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up: what the deadline is for

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            dribbler.connections += 1
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield dribbler
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


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
