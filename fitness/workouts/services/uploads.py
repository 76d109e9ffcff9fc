"""The upload path: parse and validate the recording in the request, store it, queue its counting.

Nothing is stored when the recording is refused; the counting task is published after the
transaction commits (:func:`~.queueing.enqueue_processing`).
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import uuid
from typing import IO, TYPE_CHECKING

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from inference.io import CSV_START_TIME_PREFIX, Recording, RecordingError, read_recording
from inference.results import CountingError

from .. import selectors
from ..models import ExemplarChoice, SensorSession, Workout
from .exemplars import ExemplarError, exemplar_set_check
from .queueing import enqueue_processing
from .recording_time import recording_started_at

if TYPE_CHECKING:
    from fitness.accounts.models import User

logger = logging.getLogger(__name__)

#: Most columns a CSV upload may have (the widest real format, Exermote's, has 70); wider
#: headers are refused before parsing, which would take seconds per 100,000 columns.
MAX_CSV_COLUMNS = 256
#: Longest first line of a CSV upload (bytes): 256 columns of long names fit in 16 KiB; a
#: longer line (a header padded with spaces) is refused before pandas sees it.
MAX_CSV_HEADER_BYTES = 64 * 1024


class AccountGoneError(Exception):
    """The uploading account was deleted while its upload was in flight (nothing is stored)."""


def session_create(
    *,
    user: User,
    file: IO[bytes],
    fmt: str,
    exercise_hint: str = "",
    client_id: uuid.UUID | None = None,
    workout: Workout | None = None,
    filename: str | None = None,
    started_at: dt.datetime | None = None,
    exemplar: str = ExemplarChoice.AUTO,
    exemplar_set_id: int | None = None,
) -> tuple[SensorSession, bool]:
    """Parse, validate and store one uploaded recording; queue its counting.

    ``started_at`` (aware, checked by the caller with
    :func:`~.recording_time.started_at_problem`) dates the recording; without it the
    recording's own clock does where the format has one, else the upload time
    (:func:`~.recording_time.recording_started_at`).

    ``exemplar`` (``auto`` or ``none``) and ``exemplar_set_id`` (one of the user's reviewed sets,
    checked by :func:`~.exemplars.exemplar_set_check`) say which exemplar the learned counter
    counts with (:mod:`.exemplars`); a named set is stored as ``exemplar: set``.

    Returns ``(session, created)``. With a ``client_id`` the user already used, the
    existing session is returned with ``created=False`` (an idempotent retry);
    nothing is parsed or stored then.

    The user's row is locked while the session is inserted, as ``user_delete`` locks it
    before collecting the account's sessions: an upload racing the account's deletion is
    either stored before it (and deleted with it) or refused.

    Raises:
        RecordingError: the file cannot be read in format ``fmt`` (nothing is stored).
        ValueError: the workout belongs to another user.
        ExemplarError: ``exemplar_set`` is not the user's, of another exercise, or not reviewed
            (nothing is stored).
        AccountGoneError: the account was deleted during the upload (nothing is stored).
    """
    if workout is not None and workout.user_id != user.pk:
        raise ValueError("the workout belongs to another user")
    if exemplar_set_id is not None:
        if exemplar == ExemplarChoice.NONE:
            raise ExemplarError("exemplar", "`none` asks for no exemplar: leave out exemplar_set")
        exemplar_set_check(user=user, exemplar_set_id=exemplar_set_id, exercise_hint=exercise_hint or None)
        exemplar = ExemplarChoice.SET
    elif exemplar not in (ExemplarChoice.AUTO, ExemplarChoice.NONE):
        raise ExemplarError("exemplar", "must be `auto` or `none` (name a set in exemplar_set)")
    if client_id is not None:
        existing = SensorSession.objects.filter(user=user, client_id=client_id).first()
        if existing is not None:
            return existing, False

    raw = file.read()
    recording = parse_upload(raw=raw, fmt=fmt)
    check_countable(recording=recording, exercise_hint=exercise_hint or None)
    now = timezone.now()

    session = SensorSession(
        user=user,
        workout=workout,
        client_id=client_id,
        format=fmt,
        exercise_hint=exercise_hint or "",
        status=SensorSession.Status.QUEUED,
        started_at=recording_started_at(recording=recording, user=user, started_at=started_at, now=now),
        queued_at=now,
        exemplar=exemplar,
        exemplar_set_id=exemplar_set_id,
        **recording_summary(recording),
    )
    name = filename or getattr(file, "name", None) or f"upload.{fmt}"
    try:
        with transaction.atomic():
            if not type(user).objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True):
                raise AccountGoneError("the account was deleted during the upload")
            session.file.save(name, ContentFile(raw), save=False)
            session.save(force_insert=True)
            transaction.on_commit(lambda: enqueue_processing(session.pk))
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
        check_csv_header(raw)
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


def check_csv_header(raw: bytes) -> None:
    """Refuse a CSV whose first line is longer than ``MAX_CSV_HEADER_BYTES`` or has more than
    ``MAX_CSV_COLUMNS`` columns (counted as the CSV reader would: commas outside quotes)."""
    start = 0
    if raw.startswith(CSV_START_TIME_PREFIX.encode()):  # the canonical CSV's start-time line: the header follows
        newline = raw.find(b"\n", 0, MAX_CSV_HEADER_BYTES + 1)
        if newline < 0 and len(raw) > MAX_CSV_HEADER_BYTES:
            raise RecordingError(f"the first line is longer than {MAX_CSV_HEADER_BYTES // 1024} KiB")
        start = newline + 1 if newline >= 0 else len(raw)
    end = raw.find(b"\n", start, start + MAX_CSV_HEADER_BYTES + 1)
    if end < 0 and len(raw) - start > MAX_CSV_HEADER_BYTES:
        raise RecordingError(f"the first line is longer than {MAX_CSV_HEADER_BYTES // 1024} KiB")
    first_line = raw[start : end if end >= 0 else len(raw)]
    try:
        columns = len(next(csv.reader([first_line.decode("utf-8", errors="replace")]), [""]))
    except csv.Error:  # a stray carriage return: count the separators
        columns = first_line.count(b",") + 1
    if columns > MAX_CSV_COLUMNS:
        raise RecordingError(f"the first line has {columns} columns; at most {MAX_CSV_COLUMNS} are accepted")


def check_countable(*, recording: Recording, exercise_hint: str | None) -> str:
    """Refuse a recording that the method counting it could not count; return that method.

    The method is chosen by the function the worker uses
    (:func:`inference.pipeline.check_countable`), with the spec of
    :func:`fitness.workouts.selectors.counting_spec` (the production version's, else the shipped
    model's; no TensorFlow here), the one ``GET /api/v1/exercises/`` shows methods for.

    Raises:
        RecordingError: field ``file``, naming what is missing.
    """
    from inference.pipeline import check_countable as method_for

    try:
        return method_for(recording, selectors.counting_spec(), exercise_hint)
    except CountingError as exc:
        raise RecordingError(str(exc), field="file") from exc


def recording_summary(recording: Recording) -> dict:
    """The recording's shape as stored on the session."""
    return {
        "n_samples": recording.n_samples,
        "duration_s": round(recording.duration_s, 3),
        "sample_rate_hz": round(recording.sample_rate_hz, 3),
        "channels": list(recording.channels),
    }


def session_delete(*, session: SensorSession) -> None:
    """Delete a session, its sets and repetitions; its file and cached plot go once the delete
    commits (``fitness.workouts.signals``, for every delete path)."""
    session.delete()
