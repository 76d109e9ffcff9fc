"""Where a webhook may point: ``http``/``https`` URLs whose host resolves only to public addresses.

Every address ``getaddrinfo`` gives for the host (IPv4 and IPv6, a literal IP too) is checked;
one private, loopback, link-local, multicast, reserved or otherwise non-global address refuses
the URL (``localhost``, ``10.0.0.5``, ``[::1]``, ``169.254.169.254``, ``::ffff:127.0.0.1``).
IPv6 addresses that carry an IPv4 address (IPv4-mapped, 6to4, NAT64) are checked for it too.
``allow_private`` (``FITNESS_WEBHOOKS_ALLOW_PRIVATE``) lets any address through: local runs.

The check runs when a subscription is made and again before each delivery, and the delivery
connects to the addresses it checked (:class:`Target`), so a name that is re-pointed at an
inside address later (DNS rebinding) is refused then.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = {"http": 80, "https": 443}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: Why an address is refused, in the order the checks run.
_KINDS = (
    ("is_loopback", "a loopback"),
    ("is_link_local", "a link-local"),
    ("is_multicast", "a multicast"),
    ("is_unspecified", "an unspecified"),
    ("is_reserved", "a reserved"),
    ("is_private", "a private"),
)


class URLError(ValueError):
    """The URL cannot be used; ``message`` says why (for the ``url`` field of a 400)."""

    #: Whether a later try may succeed (the host did not resolve now); False for a refused URL.
    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnresolvableHostError(URLError):
    transient = True


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``addresses``, in ``getaddrinfo`` order) and what to ask."""

    scheme: str
    host: str  # as in the URL, lower case, without brackets
    port: int
    path: str  # path and query, at least "/"
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not be sent to ``address`` ("a loopback address"), or None if it is public."""
    if address.version == 6:
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and (why := refusal(embedded)):
            return why
    for attribute, kind in _KINDS:
        if getattr(address, attribute):
            return f"{kind} address"
    if not address.is_global:
        return "a non-public address"
    return None


def parse(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of a well-formed http(s) URL; raises :class:`URLError`."""
    if not isinstance(url, str) or not url:
        raise URLError("enter a URL")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise URLError("the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # an unbalanced or bad [IPv6] host
        raise URLError("the URL's host is not valid") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise URLError("the URL must start with https:// or http://")
    if "@" in parts.netloc:
        raise URLError("the URL must not contain a user name or password (deliveries are signed instead)")
    host = (hostname or "").rstrip(".").lower()
    if not host:
        raise URLError("the URL has no host")
    if ":" not in host:
        try:  # an internationalised name as DNS and the Host header carry it
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise URLError("the URL's host is not a valid name") from exc
    try:
        port = parts.port
    except ValueError as exc:
        raise URLError("the URL's port is not a number from 1 to 65535") from exc
    if port is None:
        port = SCHEMES[scheme]
    elif not 1 <= port <= 65535:  # urlsplit lets port 0 through (it was sent to the default port)
        raise URLError("the URL's port is not a number from 1 to 65535")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return scheme, host, port, path


def resolve(url: str, *, allow_private: bool) -> Target:
    """Check ``url`` and resolve its host; raises :class:`URLError` (:class:`UnresolvableHostError`
    when the name does not resolve now) naming the reason."""
    scheme, host, port, path = parse(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnresolvableHostError(f"the host {host!r} cannot be resolved") from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)))
    if not addresses:
        raise UnresolvableHostError(f"the host {host!r} has no IPv4 or IPv6 address")
    if not allow_private:
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # fe80::1%eth0: a zone index
            if why := refusal(address):
                # The address itself is not shown: a name's inside address is nobody's business.
                shown = f"{host} is" if host == text else f"{host!r} resolves to"
                raise URLError(f"{shown} {why}: webhooks are only sent to public addresses")
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=addresses)
