"""One webhook POST over urllib3, to the addresses :func:`.addresses.resolve` checked.

The connection goes to a checked IP address, with the URL's host in the ``Host`` header and,
for https, in SNI and the certificate check (the system's trusted CAs): the name is not looked
up a second time, so it cannot be re-pointed between the check and the request. Redirects are
not followed (a 3xx is an answer like any other non-2xx) and no proxy from the environment is
used. The answer's body is not read.
"""

from __future__ import annotations

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from .addresses import Target

#: Addresses of a name tried at most (each may take ``timeout_s`` to refuse).
MAX_ADDRESSES = 3


class TransportError(Exception):
    """No answer came: timeout, connection refused, TLS failure, broken answer."""


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST ``body`` to ``target``; returns the answer's status code or raises :class:`TransportError`.

    The first ``MAX_ADDRESSES`` addresses are tried in order while a connection cannot be made;
    ``timeout_s`` bounds connecting to each and the wait for the answer.
    """
    headers = {**headers, "Host": target.host_header}
    error: Exception | None = None
    for address in target.addresses[:MAX_ADDRESSES]:
        try:
            return _post_to(address, target, body=body, headers=headers, timeout_s=timeout_s)
        except (NewConnectionError, ConnectTimeoutError) as exc:
            error = exc  # this address cannot be reached: try the next one
        except HTTPError as exc:
            raise TransportError(_describe(exc)) from exc
    raise TransportError(_describe(error))


def _post_to(address: str, target: Target, *, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    options: dict = {
        "port": target.port,
        "timeout": urllib3.Timeout(connect=timeout_s, read=timeout_s),
        "retries": False,
        "maxsize": 1,
    }
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address, cert_reqs="CERT_REQUIRED", server_hostname=target.host, assert_hostname=target.host, **options
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, **options)
    with pool:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            return response.status
        finally:
            response.close()


def _describe(exc: Exception | None) -> str:
    """A short reason for the delivery log (urllib3's messages name the pool object)."""
    if exc is None:
        return "no address to connect to"
    if isinstance(exc, NewConnectionError):  # before ConnectTimeoutError: urllib3 makes it a subclass
        reason = str(exc).rsplit(": ", 1)[-1]
        return f"cannot connect: {reason}"
    if isinstance(exc, ConnectTimeoutError):
        return "timed out connecting"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return "timed out waiting for the answer"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error: {exc}"
    return f"{type(exc).__name__}: {exc}"
