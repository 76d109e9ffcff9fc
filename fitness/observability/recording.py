"""Where the measurements of other apps are taken: Django and Celery signals, never their code.

- an upload (a new ``SensorSession``), after its transaction commits: ``uploaded``;
- workouts' ``session_finished`` (in the worker, after commit): ``done`` or ``failed`` with the
  counting method, and for ``done`` the upload -> done and worker counting times;
- the end of each ``webhooks.deliver`` task run: its outcome.

A failure to record is logged and never reaches the upload, the session or the delivery.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from fitness.workouts.models import ExerciseSet, SensorSession
from fitness.workouts.signals import session_finished

from . import catalog, store

logger = logging.getLogger(__name__)


def _record(changes: list) -> None:
    try:
        store.record(changes)
    except Exception:  # metrics must never fail the work they measure
        logger.exception("metrics could not be recorded")


@receiver(post_save, sender=SensorSession, dispatch_uid="observability.session_uploaded")
def session_uploaded(sender, instance: SensorSession, created: bool, **kwargs) -> None:
    if created:
        changes = [store.Add(catalog.SESSIONS_TOTAL, {"status": "uploaded", "method": "none"})]
        transaction.on_commit(lambda: _record(changes), robust=True)


def session_method(session: SensorSession) -> str:
    """``classifier`` if the classifier counted a set of the session, ``learned`` if the learned
    counter did, ``generic`` if only the peak counters did, else ``none`` (one query)."""
    methods = set(session.sets.exclude(method=ExerciseSet.Method.MANUAL).values_list("method", flat=True).distinct())
    if ExerciseSet.Method.CLASSIFIER in methods:
        return "classifier"
    if ExerciseSet.Method.LEARNED in methods:
        return "learned"
    return "generic" if methods else "none"


def finished_changes(session: SensorSession) -> list:
    """What a finished counting adds: the session's outcome, and for ``done`` both counting times."""
    status = session.status if session.status in ("done", "failed") else None
    if status is None:
        return []
    changes: list = [store.Add(catalog.SESSIONS_TOTAL, {"status": status, "method": session_method(session)})]
    if status == SensorSession.Status.DONE and session.finished_at is not None:
        spans = {"upload_to_done": session.queued_at, "worker": session.processing_started_at}
        for span, start in spans.items():
            if start is not None:
                seconds = max(0.0, (session.finished_at - start).total_seconds())
                changes.append(
                    store.Observe(catalog.COUNTING_SECONDS, {"span": span}, seconds, catalog.COUNTING_BUCKETS)
                )
    return changes


@receiver(session_finished, sender=SensorSession, dispatch_uid="observability.session_finished")
def session_counted(sender, session: SensorSession, **kwargs) -> None:
    try:
        changes = finished_changes(session)
    except Exception:
        logger.exception("session %s: metrics could not be read", session.pk)
        return
    _record(changes)


def webhook_outcome(state: str | None, retval) -> str | None:
    """The outcome of one ``webhooks.deliver`` run from Celery's ``task_postrun`` (None: nothing sent)."""
    if state == "RETRY":
        return "retried"
    if retval in ("delivered", "failed"):
        return retval
    return None


def webhook_delivery_ran(state: str | None, retval) -> None:
    outcome = webhook_outcome(state, retval)
    if outcome is not None:
        _record([store.Add(catalog.WEBHOOK_DELIVERIES_TOTAL, {"outcome": outcome})])
