"""``GET /metrics``: the Prometheus text format, for a scraper that shows the token or comes
from an allowed address.

Access: with ``FITNESS_METRICS_TOKEN`` set, a request with ``Authorization: Bearer <token>``;
with ``FITNESS_METRICS_ALLOWED_NETWORKS`` set, a request from one of those networks (either
suffices when both are set); with neither, loopback only. Anything else gets 403 (401 when a
token is configured and none or a wrong one was shown). Not part of the API (no OpenAPI
operation).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from .collector import DatabaseCollector

_LOOPBACK = ("127.0.0.0/8", "::1/128")


@cache
def _networks(spec: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(n, strict=False) for n in spec)


def _from_allowed_network(request: HttpRequest, networks: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    return any(address in net for net in _networks(networks))


def _token_ok(request: HttpRequest, token: str) -> bool:
    scheme, _, shown = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(shown.strip().encode(), token.encode())


def allowed(request: HttpRequest) -> int | None:
    """None if the scrape is allowed, else the status to answer (401 or 403)."""
    token = settings.FITNESS_METRICS_TOKEN
    networks = tuple(settings.FITNESS_METRICS_ALLOWED_NETWORKS)
    if token and _token_ok(request, token):
        return None
    if networks and _from_allowed_network(request, networks):
        return None
    if not token and not networks and _from_allowed_network(request, _LOOPBACK):
        return None
    return 401 if token else 403


@cache
def _database_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return registry


def exposition() -> bytes:
    """This process's (or, in multiprocess mode, every web process's) HTTP metrics and the
    database-backed ones, in the Prometheus text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        local = CollectorRegistry()
        multiprocess.MultiProcessCollector(local)
    else:
        local = REGISTRY
    return generate_latest(local) + generate_latest(_database_registry())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The metrics (200, ``text/plain; version=0.0.4``), or 401/403 (see the module's docstring)."""
    refused = allowed(request)
    if refused is not None:
        response = HttpResponse(f"{refused} metrics: not allowed\n", status=refused, content_type="text/plain")
        if refused == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
