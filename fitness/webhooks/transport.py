"""One webhook POST over urllib3, to the addresses :func:`.addresses.resolve` checked.

The connection goes to a checked IP address, with the URL's host in the ``Host`` header and,
for https, in SNI and the certificate check (the system's trusted CAs): the name is not looked
up a second time, so it cannot be re-pointed between the check and the request. Redirects are
not followed (a 3xx is an answer like any other non-2xx) and no proxy from the environment is
used. The answer's body is not read.

An attempt has an overall deadline: socket timeouts bound each wait for bytes, not their sum,
so a receiver that dribbles its status line one byte at a time would otherwise hold the worker
for as long as it likes. A watcher thread (what urllib3's documentation suggests for a
wall-clock limit) shuts the socket down when the deadline passes, which ends a blocked read at
once.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from .addresses import Target

#: Addresses of a name tried at most (each may take ``timeout_s`` to refuse).
MAX_ADDRESSES = 3


class TransportError(Exception):
    """No answer came: timeout, connection refused, TLS failure, broken answer."""


class DeadlineExceededError(TransportError):
    """No complete status line and headers within the attempt's deadline."""


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout_s: float, deadline_s: float) -> int:
    """POST ``body`` to ``target``; returns the answer's status code or raises :class:`TransportError`.

    ``deadline_s`` (seconds) bounds the whole attempt: connecting, sending, the status line and
    the headers together (:class:`DeadlineExceededError`). ``timeout_s`` bounds each network wait
    within it (connecting to one address, a TLS handshake, each read). The first
    ``MAX_ADDRESSES`` addresses are tried in order while a connection cannot be made. A TLS
    handshake cannot be cut from outside: one that starts just before the deadline may end up to
    ``timeout_s`` after it.
    """
    headers = {**headers, "Host": target.host_header}
    deadline = time.monotonic() + deadline_s
    error: Exception | None = None
    for address in target.addresses[:MAX_ADDRESSES]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            return _post_to(address, target, body=body, headers=headers, timeout_s=min(timeout_s, remaining),
                            deadline=deadline)  # fmt: skip
        except (NewConnectionError, ConnectTimeoutError) as exc:
            error = exc  # this address cannot be reached: try the next one
        except DeadlineExceededError as exc:
            raise DeadlineExceededError(f"timed out: no complete answer within the {deadline_s:g} s deadline") from exc
        except (HTTPError, OSError, http.client.HTTPException, ssl.CertificateError) as exc:
            raise TransportError(_describe(exc)) from exc
    if time.monotonic() >= deadline:
        raise DeadlineExceededError(f"timed out: no complete answer within the {deadline_s:g} s deadline")
    raise TransportError(_describe(error))


class _Watchdog:
    """Shuts ``conn``'s socket down at ``deadline`` (monotonic seconds) unless cancelled first."""

    def __init__(self, conn: HTTPConnection, deadline: float) -> None:
        self.conn = conn
        self.fired = False
        self._lock = threading.Lock()
        self._cancelled = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self.fired = True
            sock = self.conn.sock
            if sock is not None:
                # socket.socket's own shutdown: for TLS too, without touching the TLS state. OSError:
                # already closed, or detached while its TLS handshake runs.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        """Stop the watch; after it returns, the socket is never touched (it may be closed)."""
        with self._lock:
            self._cancelled = True
        self._timer.cancel()


def _post_to(
    address: str, target: Target, *, body: bytes, headers: dict[str, str], timeout_s: float, deadline: float
) -> int:
    if target.scheme == "https":
        conn: HTTPConnection = HTTPSConnection(
            address,
            target.port,
            timeout=timeout_s,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        conn = HTTPConnection(address, target.port, timeout=timeout_s)
    watchdog = _Watchdog(conn, deadline)
    try:
        conn.connect()
        if watchdog.fired:
            raise DeadlineExceededError("no answer within the deadline (still connecting)")
        conn.request("POST", target.path, body=body, headers=headers, preload_content=False)
        try:
            response = conn.getresponse()
        except (OSError, http.client.HTTPException, HTTPError) as exc:
            if watchdog.fired:  # the shutdown ended the read: a broken answer, or EOF
                raise DeadlineExceededError("no complete answer within the deadline") from exc
            raise
        if watchdog.fired:
            raise DeadlineExceededError("no complete answer within the deadline")
        status = response.status
        response.release_conn()
        return status
    except (OSError, http.client.HTTPException) as exc:
        if watchdog.fired:  # sending was cut
            raise DeadlineExceededError("no answer within the deadline") from exc
        raise
    finally:
        watchdog.cancel()
        conn.close()


def _describe(exc: Exception | None) -> str:
    """A short reason for the delivery log (urllib3's messages name the pool object)."""
    if exc is None:
        return "no address to connect to"
    if isinstance(exc, NewConnectionError):  # before ConnectTimeoutError: urllib3 makes it a subclass
        reason = str(exc).rsplit(": ", 1)[-1]
        return f"cannot connect: {reason}"
    if isinstance(exc, ConnectTimeoutError):
        return "timed out connecting"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return "timed out waiting for the answer"
    if isinstance(exc, urllib3.exceptions.SSLError | ssl.SSLError | ssl.CertificateError):
        return f"TLS error: {exc}"
    prefix = "broken answer: " if isinstance(exc, http.client.HTTPException) else ""
    return f"{prefix}{type(exc).__name__}: {exc}"
