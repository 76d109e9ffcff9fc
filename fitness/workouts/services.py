"""Writes for workouts and sensor sessions (the business logic; views and tasks call these).

Upload path: :func:`session_create` parses and validates the recording in the
request, stores the raw file and queues counting after the transaction commits.
Worker path: :func:`session_process` counts the stored file and saves the result
with :func:`session_save_result`, or marks the session failed with a reason.
Sweep: :func:`sessions_requeue_stale` queues again what a lost message or a lost worker
left behind (see ``FITNESS_SWEEP_*`` in the settings).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import lru_cache
from typing import IO, TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from inference.io import Recording, RecordingError, read_recording
from inference.results import CountingError, CountResult
from inference.spec import ModelSpec

from .models import ExerciseSet, Repetition, SensorSession, Workout
from .plots import forget_plots_on_commit

if TYPE_CHECKING:
    from fitness.accounts.models import User

logger = logging.getLogger(__name__)

#: Longest error text stored on a failed session.
MAX_ERROR_CHARS = 2000
#: Most columns a CSV upload may have (the widest real format has about 20); wider
#: headers are refused before parsing, which would take seconds per 100,000 columns.
MAX_CSV_COLUMNS = 256
#: Most sessions one sweep queues again (the next sweep takes the rest).
SWEEP_BATCH = 500


# --- Workouts -----------------------------------------------------------------------


def workout_create(*, user: User, date, notes: str = "") -> Workout:
    return Workout.objects.create(user=user, date=date, notes=notes)


def workout_update(*, workout: Workout, **fields) -> Workout:
    for name in ("date", "notes"):
        if name in fields:
            setattr(workout, name, fields[name])
    workout.save(update_fields=[n for n in ("date", "notes") if n in fields] or None)
    return workout


# --- Upload -------------------------------------------------------------------------


def session_create(
    *,
    user: User,
    file: IO[bytes],
    fmt: str,
    exercise_hint: str = "",
    client_id: uuid.UUID | None = None,
    workout: Workout | None = None,
    filename: str | None = None,
) -> tuple[SensorSession, bool]:
    """Parse, validate and store one uploaded recording; queue its counting.

    Returns ``(session, created)``. With a ``client_id`` the user already used, the
    existing session is returned with ``created=False`` (an idempotent retry);
    nothing is parsed or stored then.

    Raises:
        RecordingError: the file cannot be read in format ``fmt`` (nothing is stored).
        ValueError: the workout belongs to another user.
    """
    if workout is not None and workout.user_id != user.pk:
        raise ValueError("the workout belongs to another user")
    if client_id is not None:
        existing = SensorSession.objects.filter(user=user, client_id=client_id).first()
        if existing is not None:
            return existing, False

    raw = file.read()
    recording = parse_upload(raw=raw, fmt=fmt)
    check_countable(recording=recording, exercise_hint=exercise_hint or None)

    session = SensorSession(
        user=user,
        workout=workout,
        client_id=client_id,
        format=fmt,
        exercise_hint=exercise_hint or "",
        status=SensorSession.Status.QUEUED,
        **recording_summary(recording),
    )
    name = filename or getattr(file, "name", None) or f"upload.{fmt}"
    try:
        with transaction.atomic():
            session.file.save(name, ContentFile(raw), save=False)
            session.save(force_insert=True)
            transaction.on_commit(lambda: _enqueue_processing(session.pk))
    except IntegrityError:
        # A concurrent retry with the same client_id won the race: answer with its session.
        session.file.delete(save=False)
        if client_id is None:
            raise
        existing = SensorSession.objects.filter(user=user, client_id=client_id).first()
        if existing is None:
            raise
        return existing, False
    except BaseException:
        if session.file.name:
            session.file.delete(save=False)
        raise
    logger.info("session %s queued (%s, %d samples)", session.pk, fmt, session.n_samples)
    return session, True


def parse_upload(*, raw: bytes, fmt: str) -> Recording:
    """Read an uploaded recording; every problem is a :class:`RecordingError` (a 400).

    Besides the reader's own checks: CSV headers wider than ``MAX_CSV_COLUMNS`` are
    refused before parsing, and a reader failing in an unforeseen way (a bug, logged
    with its traceback) is answered as an unreadable file rather than a server error.
    """
    if fmt in ("csv", "exermote", "cara"):
        first_line = raw[: 1 << 20].split(b"\n", 1)[0]
        if first_line.count(b",") >= MAX_CSV_COLUMNS:
            raise RecordingError(
                f"the first line has {first_line.count(b',') + 1} columns; at most {MAX_CSV_COLUMNS} are accepted"
            )
    try:
        recording = read_recording(raw, fmt)
    except RecordingError:
        raise
    except (ValueError, TypeError, LookupError, ArithmeticError, RecursionError) as exc:
        logger.exception("the %s reader failed on an upload", fmt)
        raise RecordingError(f"the file cannot be read as {fmt} ({type(exc).__name__})") from exc
    samples = recording.samples
    if samples.ndim != 2 or samples.shape[1] != len(recording.channels) or recording.time_s.shape != samples.shape[:1]:
        raise RecordingError(
            f"the samples must form a table of {len(recording.channels)} numbers per row; got shape {samples.shape}"
        )
    return recording


def check_countable(*, recording: Recording, exercise_hint: str | None) -> str:
    """Refuse a recording that the method counting it could not count; return that method.

    The method is chosen by the function the worker uses
    (:func:`inference.pipeline.check_countable`), with the production version's spec read
    from the registry (no TensorFlow here).

    Raises:
        RecordingError: field ``file``, naming what is missing.
    """
    from inference.pipeline import check_countable as method_for

    try:
        return method_for(recording, _production_spec(), exercise_hint)
    except CountingError as exc:
        raise RecordingError(str(exc), field="file") from exc


def _production_spec() -> ModelSpec | None:
    """The production version's spec, else the shipped model's; None without either."""
    from fitness.mlmodels.selectors import production_spec

    spec = production_spec()
    return spec if spec is not None else _default_spec()


@lru_cache(maxsize=1)
def _default_spec() -> ModelSpec | None:
    from inference.model import DEFAULT_MODEL_PATH, ModelFileError, read_spec

    try:
        return read_spec(DEFAULT_MODEL_PATH)
    except ModelFileError:
        return None


def recording_summary(recording: Recording) -> dict:
    """The recording's shape as stored on the session."""
    return {
        "n_samples": recording.n_samples,
        "duration_s": round(recording.duration_s, 3),
        "sample_rate_hz": round(recording.sample_rate_hz, 3),
        "channels": list(recording.channels),
    }


def _enqueue_processing(session_id: uuid.UUID | str) -> bool:
    """Publish the counting task; False (logged) when the broker cannot be reached.

    The session stays ``queued`` then and :func:`sessions_requeue_stale` publishes it
    again later: an upload never fails because the broker is down.
    """
    # Imported here: workers.tasks imports this module.
    from workers.tasks import process_session

    try:
        process_session.delay(str(session_id))
    except Exception as exc:  # noqa: BLE001 - any publishing failure leaves the session queued
        logger.warning("session %s stays queued: the task could not be published (%s)", session_id, exc)
        return False
    return True


def session_delete(*, session: SensorSession) -> None:
    """Delete a session, its sets and repetitions; its file and cached plot go once the delete commits."""
    storage, name = session.file.storage, session.file.name
    forget_plots_on_commit([session])
    session.delete()
    if name:
        transaction.on_commit(lambda: storage.delete(name))


# --- Processing (worker side) -------------------------------------------------------


def run_pipeline(recording: Recording, *, exercise: str | None) -> CountResult:
    """Count one recording with the registry's production model version.

    The production version is looked up on every call (one query) and its file is loaded
    once per process, so a worker counts with a newly activated version from its next
    task on, without a restart. While the registry is empty, the shipped default model
    counts. Without a loadable model, sessions with an exercise hint are still counted by
    the peak counter; sessions without one fail with a clear reason instead of a wrong count.
    """
    # Imported here so that web processes never load TensorFlow.
    from fitness.mlmodels.runtime import production_model
    from inference.pipeline import count_recording, get_default_model

    try:
        model = production_model() or get_default_model()
    except Exception as exc:
        logger.exception("the counting model cannot be loaded")
        if not exercise or exercise == "unknown":
            raise CountingError("the counting model is not available; please retry later") from exc
        model = None
    return count_recording(recording, model=model, exercise=exercise)


def session_process(*, session_id: uuid.UUID | str) -> SensorSession | None:
    """Count a queued session and save the result; never raises for a bad recording.

    Returns the session (``done`` or ``failed``), or None if it no longer exists.
    A session already ``done`` is left alone (a redelivered or duplicate task). A session
    whose counting was started ``FITNESS_MAX_COUNT_ATTEMPTS`` times without an end (its
    worker was lost each time) fails instead of taking down another worker.
    """
    session, settled = _session_start(session_id)
    if settled:
        return session
    try:
        with session.file.open("rb") as fh:
            recording = read_recording(fh, session.format)
        result = run_pipeline(recording, exercise=session.exercise_hint or None)
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
        logger.exception("session %s: unexpected error while counting", session_id)
        return session_mark_failed(session_id=session_id, error=f"internal error while counting ({type(exc).__name__})")
    return session_save_result(session_id=session_id, result=result)


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
        session.started_at = timezone.now()
        session.finished_at = None
        session.error = ""
        session.attempts += 1
        session.save(update_fields=["status", "started_at", "finished_at", "error", "attempts"])
    return session, False


@transaction.atomic
def session_save_result(*, session_id: uuid.UUID | str, result: CountResult) -> SensorSession | None:
    """Replace the session's sets and repetitions with ``result``; status ``done``. One transaction."""
    session = SensorSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        logger.warning("session %s was deleted while it was counted", session_id)
        return None
    session.sets.all().delete()
    repetitions = []
    for index, counted in enumerate(result.sets):
        exercise_set = ExerciseSet.objects.create(
            session=session,
            user_id=session.user_id,
            index=index,
            exercise=counted.exercise,
            method=counted.method,
            reps=counted.reps,
            start_s=counted.start_s,
            end_s=counted.end_s,
            performed_at=session.created_at + timedelta(seconds=counted.start_s),
        )
        repetitions += [
            Repetition(set=exercise_set, index=i, start_s=rep.start_s, end_s=rep.end_s)
            for i, rep in enumerate(counted.repetitions)
        ]
    Repetition.objects.bulk_create(repetitions)
    session.status = SensorSession.Status.DONE
    session.error = ""
    session.total_reps = result.total_reps
    session.model_version = result.model_version or ""
    session.finished_at = timezone.now()
    session.save(update_fields=["status", "error", "total_reps", "model_version", "finished_at"])
    logger.info("session %s done: %d sets, %d reps", session_id, len(result.sets), result.total_reps)
    return session


@transaction.atomic
def session_mark_failed(*, session_id: uuid.UUID | str, error: str) -> SensorSession | None:
    """Status ``failed`` with a user-facing reason; any partial result is removed."""
    session = SensorSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        return None
    session.sets.all().delete()
    session.status = SensorSession.Status.FAILED
    session.error = (error or "unknown error")[:MAX_ERROR_CHARS]
    session.total_reps = None
    session.finished_at = timezone.now()
    session.save(update_fields=["status", "error", "total_reps", "finished_at"])
    return session


# --- Sweep (periodic) ---------------------------------------------------------------


def sessions_requeue_stale(
    *, queued_after_s: float | None = None, processing_after_s: float | None = None
) -> list[str]:
    """Queue again the sessions whose counting task was lost; returns their ids.

    - ``queued`` since more than ``queued_after_s`` (default ``FITNESS_SWEEP_QUEUED_AFTER_S``):
      the task was never published (broker down at upload time) or the broker lost it.
    - ``processing`` since more than ``processing_after_s`` (default
      ``FITNESS_SWEEP_PROCESSING_AFTER_S``, past the hard time limit): its worker died.

    Each goes back to ``queued`` with a new ``queued_at`` and its task is published after
    the commit. A duplicate task is harmless: a ``done`` session is not counted again, and
    a result replaces the previous one. Publishing failures leave the sessions for the next
    sweep. At most ``SWEEP_BATCH`` sessions per call, oldest first.
    """
    if queued_after_s is None:
        queued_after_s = settings.FITNESS_SWEEP_QUEUED_AFTER_S
    if processing_after_s is None:
        processing_after_s = settings.FITNESS_SWEEP_PROCESSING_AFTER_S
    now = timezone.now()
    stale = Q(status=SensorSession.Status.QUEUED, queued_at__lt=now - timedelta(seconds=queued_after_s)) | Q(
        status=SensorSession.Status.PROCESSING, started_at__lt=now - timedelta(seconds=processing_after_s)
    )
    with transaction.atomic():
        rows = (
            SensorSession.objects.select_for_update(skip_locked=True)
            .filter(stale)
            .order_by("queued_at")
            .values_list("pk", "status")[:SWEEP_BATCH]
        )
        found = list(rows)
        ids = [str(pk) for pk, _ in found]
        if not ids:
            return []
        SensorSession.objects.filter(pk__in=ids).update(status=SensorSession.Status.QUEUED, queued_at=now)
        transaction.on_commit(lambda: sessions_enqueue(ids))
    processing = sum(1 for _, status in found if status == SensorSession.Status.PROCESSING)
    logger.warning("sweep: %d stale sessions queued again (%d were processing)", len(ids), processing)
    return ids


def sessions_enqueue(session_ids: list[str]) -> None:
    """Publish the counting tasks; stops at the first failure (the sweep publishes the rest)."""
    for session_id in session_ids:
        if not _enqueue_processing(session_id):
            return  # the broker is down: the next sweep tries again
