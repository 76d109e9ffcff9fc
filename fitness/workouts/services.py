"""Writes for workouts and sensor sessions (the business logic; views and tasks call these).

Upload path: :func:`session_create` parses and validates the recording in the
request, stores the raw file and queues counting after the transaction commits.
Worker path: :func:`session_process` counts the stored file and saves the result
with :func:`session_save_result`, or marks the session failed with a reason.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import IO, TYPE_CHECKING

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from inference.io import Recording, RecordingError, read_recording
from inference.results import CountingError, CountResult

from .models import ExerciseSet, Repetition, SensorSession, Workout
from .plots import forget_plots_on_commit

if TYPE_CHECKING:
    from fitness.accounts.models import User

logger = logging.getLogger(__name__)

#: Longest error text stored on a failed session.
MAX_ERROR_CHARS = 2000


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
    recording = read_recording(raw, fmt)

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


def recording_summary(recording: Recording) -> dict:
    """The recording's shape as stored on the session."""
    return {
        "n_samples": recording.n_samples,
        "duration_s": round(recording.duration_s, 3),
        "sample_rate_hz": round(recording.sample_rate_hz, 3),
        "channels": list(recording.channels),
    }


def _enqueue_processing(session_id: uuid.UUID) -> None:
    # Imported here: workers.tasks imports this module.
    from workers.tasks import process_session

    process_session.delay(str(session_id))


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
    A session already ``done`` is left alone (a redelivered task).
    """
    with transaction.atomic():
        session = SensorSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            logger.warning("session %s no longer exists; nothing to count", session_id)
            return None
        if session.status == SensorSession.Status.DONE:
            logger.info("session %s is already done", session_id)
            return session
        session.status = SensorSession.Status.PROCESSING
        session.started_at = timezone.now()
        session.finished_at = None
        session.error = ""
        session.save(update_fields=["status", "started_at", "finished_at", "error"])

    try:
        with session.file.open("rb") as fh:
            recording = read_recording(fh, session.format)
        result = run_pipeline(recording, exercise=session.exercise_hint or None)
    except (RecordingError, CountingError) as exc:
        logger.info("session %s cannot be counted: %s", session_id, exc)
        return session_mark_failed(session_id=session_id, error=str(exc))
    except Exception as exc:
        logger.exception("session %s: unexpected error while counting", session_id)
        return session_mark_failed(session_id=session_id, error=f"internal error while counting ({type(exc).__name__})")
    return session_save_result(session_id=session_id, result=result)


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
