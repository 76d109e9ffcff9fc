"""The worker path: count a stored session and save the result, or mark it failed with a reason.

:func:`session_process` parses the stored recording once, resolves the session's exemplar
(:mod:`.exemplars`: a second, bounded read of the exemplar set's recording, where the learned
counter counts) and passes both on to the pipeline; :func:`session_save_result` replaces the
session's sets and repetitions in one transaction.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from fitness.core.storage import StorageUnavailable, is_transient_storage_error
from inference.io import Recording, RecordingError, read_recording
from inference.results import CountingError, CountResult

from ..models import ExerciseSet, Repetition, SensorSession
from ..signals import send_session_finished_on_commit
from . import exemplars
from .corrections import keep_corrections, total_reps_after

if TYPE_CHECKING:
    from inference.density import DensityCounter, Exemplar

logger = logging.getLogger(__name__)

#: Longest error text stored on a failed session.
MAX_ERROR_CHARS = 2000
#: Set and repetition times are stored to the millisecond, as the CLI prints them.
TIME_DECIMALS = 3


def _storage_outage(exc: BaseException) -> bool:
    """An unavailable object store, raised as such or wrapped once (e.g. in ModelFileError)."""
    return isinstance(exc, StorageUnavailable) or any(
        e is not None and is_transient_storage_error(e) for e in (exc, exc.__cause__)
    )


def active_counter() -> DensityCounter | None:
    """The learned counter the worker counts with, loaded once per process: ``FITNESS_LEARNED_COUNTER_PATH``
    when set, else the registry's production counter version, else the shipped one
    (``inference/models/counter.onnx``); None while there is none, or when it cannot be loaded
    (logged: the generic counter counts instead).

    Raises:
        StorageUnavailable: the production counter's file could not be read from the object store.
    """
    from fitness.mlmodels.runtime import production_counter
    from inference.density import default_counter, load_counter_cached

    try:
        path = settings.FITNESS_LEARNED_COUNTER_PATH
        if path:
            return load_counter_cached(path)
        return production_counter() or default_counter()
    except Exception as exc:
        if _storage_outage(exc):
            raise StorageUnavailable(f"the counter file cannot be read: {exc}") from exc
        logger.exception("the learned counter cannot be loaded; the generic counter counts instead")
        return None


def run_pipeline(recording: Recording, *, exercise: str | None, exemplar: Exemplar | None = None) -> CountResult:
    """Count one recording with the registry's production model version and the active learned counter.

    The production version is looked up on every call (one query) and its file is loaded
    once per process, so a worker counts with a newly activated version from its next
    task on, without a restart. While the registry is empty, the shipped default model
    counts. Without a loadable model, sessions with an exercise hint are still counted by
    the peak counter; sessions without one fail with a clear reason instead of a wrong count.
    Where the learned counter (:func:`active_counter`) counts, it is given ``exemplar``; an
    exemplar it cannot read (no three-axis accelerometer) is dropped with a warning.
    """
    # Imported here so that web processes never load TensorFlow.
    from fitness.mlmodels.runtime import production_model
    from inference.pipeline import count_recording, get_default_model

    try:
        model = production_model() or get_default_model()
    except Exception as exc:
        if _storage_outage(exc):
            raise StorageUnavailable(f"the model file cannot be read: {exc}") from exc
        logger.exception("the counting model cannot be loaded")
        if not exercise or exercise == "unknown":
            raise CountingError("the counting model is not available; please retry later") from exc
        model = None
    counter = active_counter()
    if exemplar is not None:
        try:
            return count_recording(recording, model=model, exercise=exercise, counter=counter, exemplar=exemplar)
        except CountingError as exc:
            logger.warning("the exemplar cannot be used (%s); counting without it", exc)
    return count_recording(recording, model=model, exercise=exercise, counter=counter)


def session_process(*, session_id: uuid.UUID | str) -> SensorSession | None:
    """Count a queued session and save the result; never raises for a bad recording.

    Returns the session (``done`` or ``failed``), or None if it no longer exists.
    A session already ``done`` is left alone (a redelivered or duplicate task). A session
    whose counting was started ``FITNESS_MAX_COUNT_ATTEMPTS`` times without an end (its
    worker was lost each time) fails instead of taking down another worker.

    Raises:
        StorageUnavailable: the recording or the model file could not be read from the object
            store (no connection, timeout, 5xx); the session is ``queued`` again with its attempt
            given back, and the task retries with backoff (``fitness.core.tasks.DB_RETRY``).
    """
    session, settled = _session_start(session_id)
    if settled:
        return session
    try:
        with session.file.open("rb") as fh:
            recording = read_recording(fh, session.format)
        exemplar_set, exemplar = exemplars.exemplar_for(session=session, recording=recording, counter=active_counter())
        result = run_pipeline(recording, exercise=session.exercise_hint or None, exemplar=exemplar)
    except (RecordingError, CountingError) as exc:
        logger.info("session %s cannot be counted: %s", session_id, exc)
        return session_mark_failed(session_id=session_id, error=str(exc))
    except SoftTimeLimitExceeded:
        logger.error("session %s: counting exceeded the time limit", session_id)
        return session_mark_failed(
            session_id=session_id,
            error=f"counting took longer than the time limit ({settings.CELERY_TASK_SOFT_TIME_LIMIT} s)",
        )
    except Exception as exc:
        if _storage_outage(exc):
            _session_give_back(session_id)
            raise StorageUnavailable(f"session {session_id}: the object store is unavailable ({exc})") from exc
        logger.exception("session %s: unexpected error while counting", session_id)
        return session_mark_failed(session_id=session_id, error=f"internal error while counting ({type(exc).__name__})")
    return session_save_result(
        session_id=session_id, result=result, exemplar_set_id=None if exemplar_set is None else exemplar_set.pk
    )


def _session_give_back(session_id: uuid.UUID | str) -> None:
    """Back to ``queued`` without spending an attempt: the recording or the model could not be
    read from an unavailable object store, so nothing was counted (the task is retried)."""
    SensorSession.objects.filter(pk=session_id, status=SensorSession.Status.PROCESSING).update(
        status=SensorSession.Status.QUEUED, processing_started_at=None, attempts=F("attempts") - 1
    )
    logger.warning("session %s: the object store is unavailable; the count will be retried", session_id)


def _session_start(session_id: uuid.UUID | str) -> tuple[SensorSession | None, bool]:
    """Move the session to ``processing`` (one more attempt). Returns ``(session, settled)``:
    settled means there is nothing to count (gone, done, or failed for too many attempts)."""
    max_attempts = settings.FITNESS_MAX_COUNT_ATTEMPTS
    with transaction.atomic():
        session = SensorSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            logger.warning("session %s no longer exists; nothing to count", session_id)
            return None, True
        if session.status == SensorSession.Status.DONE:
            logger.info("session %s is already done", session_id)
            return session, True
        if session.attempts >= max_attempts:
            logger.error("session %s: counting was interrupted %d times; giving up", session_id, session.attempts)
            failed = session_mark_failed(
                session_id=session_id,
                error=f"counting was interrupted {session.attempts} times (worker lost or time limit); not retried",
            )
            return failed, True
        session.status = SensorSession.Status.PROCESSING
        session.processing_started_at = timezone.now()
        session.finished_at = None
        session.error = ""
        session.attempts += 1
        session.save(update_fields=["status", "processing_started_at", "finished_at", "error", "attempts"])
    return session, False


@transaction.atomic
def session_save_result(
    *, session_id: uuid.UUID | str, result: CountResult, exemplar_set_id: int | None = None
) -> SensorSession | None:
    """Replace the session's sets and repetitions with ``result``; status ``done``. One transaction.

    Sets the user reviewed (confirmed, corrected or added) are kept with their ``reps``; new
    counted sets that overlap them update their ``counted_reps`` (:func:`.corrections.keep_corrections`).
    Sets counted with the exemplar (``CountedSet.used_exemplar``) name ``exemplar_set_id`` (the
    set the exemplar was cut from) as their ``exemplar_set``.
    """
    session = SensorSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        logger.warning("session %s was deleted while it was counted", session_id)
        return None
    if exemplar_set_id is not None and not ExerciseSet.objects.filter(pk=exemplar_set_id).exists():
        exemplar_set_id = None  # deleted while the session was counted
    plan = keep_corrections(session=session, result=result, exemplar_set_id=exemplar_set_id)
    repetitions = []
    for index, counted in enumerate(result.sets):
        if index in plan.absorbed:
            continue
        exercise_set = ExerciseSet.objects.create(
            session=session,
            user_id=session.user_id,
            index=plan.index_of[index],
            exercise=counted.exercise,
            method=counted.method,
            reps=counted.reps,
            counted_reps=counted.reps,
            exemplar_set_id=exemplar_set_id if counted.used_exemplar else None,
            start_s=round(counted.start_s, TIME_DECIMALS),
            end_s=round(counted.end_s, TIME_DECIMALS),
            performed_at=session.started_at + timedelta(seconds=counted.start_s),
        )
        repetitions += [
            Repetition(
                set=exercise_set,
                index=i,
                start_s=round(rep.start_s, TIME_DECIMALS),
                end_s=round(rep.end_s, TIME_DECIMALS),
            )
            for i, rep in enumerate(counted.repetitions)
        ]
    Repetition.objects.bulk_create(repetitions)
    plan.finish()
    session.status = SensorSession.Status.DONE
    session.error = ""
    session.total_reps = total_reps_after(session=session, result=result, plan=plan)
    session.model_version = result.model_version or ""
    session.finished_at = timezone.now()
    session.save(update_fields=["status", "error", "total_reps", "model_version", "finished_at"])
    send_session_finished_on_commit(session)
    logger.info(
        "session %s done: %d sets, %d reps, %d corrections kept",
        session_id,
        len(result.sets),
        result.total_reps,
        plan.kept,
    )
    return session


@transaction.atomic
def session_mark_failed(*, session_id: uuid.UUID | str, error: str) -> SensorSession | None:
    """Status ``failed`` with a user-facing reason; any partial result is removed (the user's
    reviewed sets stay, for a later re-count to keep)."""
    session = SensorSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        return None
    session.sets.filter(reviewed_at__isnull=True).delete()
    session.status = SensorSession.Status.FAILED
    session.error = (error or "unknown error")[:MAX_ERROR_CHARS]
    session.total_reps = None
    session.finished_at = timezone.now()
    session.save(update_fields=["status", "error", "total_reps", "finished_at"])
    send_session_finished_on_commit(session)
    return session
