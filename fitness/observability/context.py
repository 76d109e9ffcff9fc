"""The request id and session id of what this thread or task is doing, for log lines and tasks.

Set by :class:`~.middleware.RequestIdMiddleware` in the web process and by the task signals of
:mod:`.celery_signals` in workers; :class:`LogContextFilter` puts both on every log record.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

#: Longest accepted ``X-Request-ID``; longer ones are replaced by a new id.
REQUEST_ID_MAX_LENGTH = 128
#: Characters accepted in an ``X-Request-ID`` (a UUID, a proxy's or tracer's id); anything
#: else (spaces, quotes, control characters that could forge log lines) gets a new id.
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:@=+/-]{{1,{REQUEST_ID_MAX_LENGTH}}}")

request_id: ContextVar[str] = ContextVar("request_id", default="")
session_id: ContextVar[str] = ContextVar("session_id", default="")


def new_request_id() -> str:
    """A fresh request id: 32 lowercase hex digits (a UUID4)."""
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> str | None:
    """``value`` if it is a usable request id (1-128 of ``A-Za-z0-9._:@=+/-``), else None."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


class LogContextFilter(logging.Filter):
    """Adds ``request_id`` and ``session_id`` (empty strings when unknown) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get()
        if not getattr(record, "session_id", None):
            record.session_id = session_id.get()
        return True
