"""The request id and session id travel with tasks, and webhook outcomes are counted.

- ``before_task_publish``: the publishing context's request id and session id become the
  message's ``request_id`` and ``session_id`` headers (an upload's request queues the counting
  task; the counting task queues its webhook deliveries).
- ``task_prerun``: the running task's context takes them (the session id from the task's own
  ``session_id`` argument when it has one), so every log line of the task carries them;
  ``task_postrun`` clears them, and counts the outcome of a ``webhooks.deliver`` run.
"""

from __future__ import annotations

import inspect
import logging

from celery.signals import before_task_publish, task_postrun, task_prerun

from . import context, recording

logger = logging.getLogger(__name__)

HEADERS = ("request_id", "session_id")
_tokens: dict[str, tuple] = {}


@before_task_publish.connect(dispatch_uid="observability.publish_context")
def add_context_headers(sender=None, headers=None, **kwargs) -> None:
    if headers is None:
        return
    for name, var in (("request_id", context.request_id), ("session_id", context.session_id)):
        value = var.get()
        if value and not headers.get(name):
            headers[name] = value


def _header(task, name: str) -> str:
    request = task.request
    value = getattr(request, name, None) or (getattr(request, "headers", None) or {}).get(name)
    return str(value) if value else ""


def _session_argument(task, args, kwargs) -> str:
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except TypeError:
        return ""
    value = bound.arguments.get("session_id")
    return str(value) if value else ""


@task_prerun.connect(dispatch_uid="observability.task_context")
def enter_task_context(sender=None, task_id=None, task=None, args=None, kwargs=None, **extra) -> None:
    if task is None or task_id is None:
        return
    request_id = context.valid_request_id(_header(task, "request_id")) or ""
    session_id = _session_argument(task, args, kwargs) or _header(task, "session_id")
    _tokens[task_id] = (context.request_id.set(request_id), context.session_id.set(session_id))


@task_postrun.connect(dispatch_uid="observability.task_context_end")
def leave_task_context(sender=None, task_id=None, task=None, retval=None, state=None, **extra) -> None:
    if task is not None and task.name == "webhooks.deliver":
        recording.webhook_delivery_ran(state, retval)
    tokens = _tokens.pop(task_id, None)
    if tokens is not None:
        try:
            context.request_id.reset(tokens[0])
            context.session_id.reset(tokens[1])
        except ValueError:  # set in another context (a thread pool): just clear
            context.request_id.set("")
            context.session_id.set("")
