"""Request ids and HTTP metrics for every request of the web process.

:class:`RequestIdMiddleware` (first in ``MIDDLEWARE``) takes the request id from
``X-Request-ID`` when it is usable (:func:`.context.valid_request_id`), else makes one, puts
it on every log line of the request and on every task the request queues, answers it in
``X-Request-ID``, and logs one line per request (``fitness.requests``). It also counts the
request in ``fitness_http_requests_total`` and ``fitness_http_request_duration_seconds``, by
the URL pattern's name (never the path: ids stay out of labels) and the status class.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram, disable_created_metrics

from . import catalog, context

logger = logging.getLogger("fitness.requests")

REQUEST_ID_HEADER = "X-Request-ID"

# No ``_created`` series: Prometheus does not need them and they double the series.
disable_created_metrics()

HTTP_REQUESTS = Counter(
    catalog.HTTP_REQUESTS_TOTAL.removesuffix("_total"),
    "HTTP requests answered, by URL pattern name, method and status class.",
    ["view", "method", "status"],
)
HTTP_DURATION = Histogram(
    catalog.HTTP_DURATION_SECONDS,
    "Seconds from the request to its answer (this process), by URL pattern name and status class.",
    ["view", "status"],
    buckets=catalog.HTTP_BUCKETS,
)
#: Methods counted by name; anything else is ``other`` (the label stays bounded).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def view_label(request: HttpRequest) -> str:
    """The URL pattern's name (``sensorsession-list``), ``<unnamed>`` or ``<unmatched>`` (a 404)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unmatched>"
    return match.view_name or "<unnamed>"


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = context.valid_request_id(request.headers.get(REQUEST_ID_HEADER)) or context.new_request_id()
        request.request_id = rid
        rid_token = context.request_id.set(rid)
        session_token = context.session_id.set("")
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            response[REQUEST_ID_HEADER] = rid
            view = view_label(request)
            status = f"{response.status_code // 100}xx"
            method = request.method if request.method in _METHODS else "other"
            HTTP_REQUESTS.labels(view=view, method=method, status=status).inc()
            HTTP_DURATION.labels(view=view, status=status).observe(seconds)
            logger.info(
                "%s %s %d (%.0f ms)",
                request.method,
                request.path,
                response.status_code,
                seconds * 1000,
                extra={"view": view, "status": response.status_code, "duration_ms": round(seconds * 1000, 1)},
            )
            return response
        finally:
            context.request_id.reset(rid_token)
            context.session_id.reset(session_token)
