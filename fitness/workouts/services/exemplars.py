"""Exemplars: a set the user reviewed tells the learned counter what one repetition of a movement is.

A session says how its exemplar is chosen (``SensorSession.exemplar``): ``auto`` (the default)
takes the user's newest reviewed set of the session's exercise hint (none without a hint or
with ``unknown``), ``none`` takes none, ``set`` the set in ``SensorSession.exemplar_set``
(named at upload, or by a re-count: :func:`session_recount`). The worker resolves it with
:func:`exemplar_for` once it has parsed the session's recording: the exemplar set's session
recording is read (a second, bounded read; none when the set is in the session itself) and cut
to the set's time range (:meth:`inference.density.Exemplar.from_range`). An exemplar that cannot
be used (its recording gone or unreadable, a stretch the counter refuses) is left out with a
warning: it never fails the session, which is then counted without one.

Only the learned counter uses an exemplar; where the classifier or a peak counter counts the
session, no exemplar is read and the counted sets name none.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from inference.density import EXEMPLAR_MAX_REPS, EXEMPLAR_MAX_S, EXEMPLAR_MIN_S, Exemplar
from inference.io import Recording, read_recording

from .. import selectors
from ..models import ExemplarChoice, ExerciseSet, SensorSession
from .corrections import SessionNotDoneError
from .queueing import enqueue_processing

if TYPE_CHECKING:
    from fitness.accounts.models import User
    from inference.density import DensityCounter

logger = logging.getLogger(__name__)

#: Most recordings read to find a usable ``auto`` exemplar (newest set first): a recording that is
#: gone or unreadable passes the choice on to the next set, within this bound.
EXEMPLAR_READS = 3
#: Most reviewed sets looked at for an ``auto`` exemplar (those outside the exemplar bounds are skipped).
EXEMPLAR_CANDIDATES = 20
#: An exemplar's fastest cadence (repetitions per second), as :class:`inference.density.Exemplar` checks.
EXEMPLAR_MAX_CADENCE_HZ = 10.0


class ExemplarError(ValueError):
    """An exemplar that cannot be used; ``field`` names the request field, ``not_found`` marks
    a set that is not the caller's (or does not exist): a 404 rather than a 400."""

    def __init__(self, field_name: str, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message
        self.not_found = not_found


def _hint(exercise_hint: str | None) -> str:
    return exercise_hint or "unknown"


def exemplar_bounds_problem(exemplar_set: ExerciseSet) -> str | None:
    """Why the set cannot be an exemplar whatever its recording holds (None: it can)."""
    if exemplar_set.reviewed_at is None:
        return (
            f"set {exemplar_set.pk} is not reviewed: confirm its count (PATCH /api/v1/sets/{exemplar_set.pk}/ "
            "with its reps) or correct it first"
        )
    if not 1 <= exemplar_set.reps <= EXEMPLAR_MAX_REPS:
        return (
            f"set {exemplar_set.pk} holds {exemplar_set.reps} repetitions; an exemplar holds 1 to {EXEMPLAR_MAX_REPS}"
        )
    duration = exemplar_set.end_s - exemplar_set.start_s
    if not EXEMPLAR_MIN_S <= duration <= EXEMPLAR_MAX_S:
        return (
            f"set {exemplar_set.pk} lasts {duration:g} s; an exemplar lasts {EXEMPLAR_MIN_S:g} to {EXEMPLAR_MAX_S:g} s"
        )
    if exemplar_set.reps > EXEMPLAR_MAX_CADENCE_HZ * duration:
        return f"set {exemplar_set.pk} holds more than {EXEMPLAR_MAX_CADENCE_HZ:g} repetitions a second"
    return None


def exemplar_set_check(*, user: User, exemplar_set_id: int, exercise_hint: str | None) -> ExerciseSet:
    """The user's set ``exemplar_set_id``, checked as the exemplar of a session with ``exercise_hint``.

    Raises:
        ExemplarError: field ``exemplar_set``: not a set of the user (``not_found``), a set of
            another exercise than the hint (no hint counts as ``unknown``), a set the user has
            not reviewed (confirmed, corrected or added), or one outside the exemplar bounds
            (1 to 500 repetitions over 1 to 900 s, at most 10 a second; 0: a phantom set).
    """
    found = ExerciseSet.objects.filter(pk=exemplar_set_id, user=user).first()
    if found is None:
        raise ExemplarError("exemplar_set", f"no set {exemplar_set_id} of yours", not_found=True)
    hint = _hint(exercise_hint)
    if found.exercise != hint:
        raise ExemplarError(
            "exemplar_set",
            f"set {found.pk} is a {found.exercise} set and the session's exercise is {hint}: an exemplar shows "
            "the exercise that is counted",
        )
    problem = exemplar_bounds_problem(found)
    if problem:
        raise ExemplarError("exemplar_set", problem)
    return found


def exemplar_for(
    *, session: SensorSession, recording: Recording, counter: DensityCounter | None
) -> tuple[ExerciseSet | None, Exemplar | None]:
    """The exemplar the session is counted with: ``(its set, the Exemplar)``, or ``(None, None)``.

    ``recording`` is the session's own, already parsed (reused when the exemplar set is in the
    session). Nothing is read when the learned counter would not count the session. Never raises
    for an exemplar that cannot be used: it is logged and left out.
    """
    from inference.pipeline import uses_learned_counter

    if session.exemplar == ExemplarChoice.NONE:
        return None, None
    hint = session.exercise_hint or None
    if session.exemplar == ExemplarChoice.AUTO and _hint(hint) == "unknown":
        return None, None
    if not uses_learned_counter(recording, selectors.counting_spec(), hint, counter, with_exemplar=True):
        return None, None
    if session.exemplar == ExemplarChoice.SET:
        chosen = ExerciseSet.objects.select_related("session").filter(pk=session.exemplar_set_id).first()
        if chosen is None:
            logger.warning("session %s: its exemplar set is gone; counted without an exemplar", session.pk)
            return None, None
        candidates = [chosen]
    else:
        candidates = [
            s
            for s in selectors.exemplar_sets(user_id=session.user_id, exercise=_hint(hint))[:EXEMPLAR_CANDIDATES]
            if exemplar_bounds_problem(s) is None
        ][:EXEMPLAR_READS]
    for candidate in candidates:
        try:
            return candidate, _exemplar(candidate, session=session, recording=recording)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # noqa: BLE001 - an exemplar never fails the session
            logger.warning(
                "session %s: set %s cannot serve as the exemplar (%s: %s)",
                session.pk,
                candidate.pk,
                type(exc).__name__,
                exc,
            )
    return None, None


def _exemplar(exemplar_set: ExerciseSet, *, session: SensorSession, recording: Recording) -> Exemplar:
    """The set's stretch of its session's recording, holding its ``reps``.

    Raises:
        ValueError: the set is outside the exemplar bounds, or its range holds under two samples.
        OSError, RecordingError, storage errors: the recording cannot be read.
    """
    problem = exemplar_bounds_problem(exemplar_set)
    if problem:
        raise ValueError(problem)
    if exemplar_set.session_id == session.pk:
        source = recording
    else:
        source_session = exemplar_set.session
        with source_session.file.open("rb") as fh:
            source = read_recording(fh, source_session.format)
    return Exemplar.from_range(source, exemplar_set.start_s, exemplar_set.end_s, exemplar_set.reps)


def session_recount(*, session: SensorSession, exemplar_set_id: int) -> SensorSession:
    """Count a done session again with the user's set ``exemplar_set_id`` as the exemplar.

    The session goes back to ``queued`` with ``exemplar: set``, and the counting task is queued
    (the counting queue) once the transaction commits. The worker saves the new count as any
    re-count (``session_save_result``): the sets nobody reviewed are replaced (tombstones for the
    sync), reviewed sets are kept with their reps and absorb the new sets that overlap them, and
    ``session_finished`` (webhooks) is sent again. Until then the session's sets are out of the
    history and statistics, as for staff reprocessing.

    Raises:
        ExemplarError: as :func:`exemplar_set_check`, with the session's exercise hint.
        SessionNotDoneError: the session is queued, being counted or failed.
    """
    with transaction.atomic():
        locked = SensorSession.objects.select_for_update().get(pk=session.pk)
        chosen = exemplar_set_check(
            user=locked.user, exemplar_set_id=exemplar_set_id, exercise_hint=locked.exercise_hint
        )
        if locked.status != SensorSession.Status.DONE:
            raise SessionNotDoneError(locked.status)
        now = timezone.now()
        locked.exemplar = ExemplarChoice.SET
        locked.exemplar_set = chosen
        locked.status = SensorSession.Status.QUEUED
        locked.error = ""
        locked.processing_started_at = None
        locked.finished_at = None
        locked.queued_at = now
        locked.attempts = 0
        locked.save(
            update_fields=[
                "exemplar",
                "exemplar_set",
                "status",
                "error",
                "processing_started_at",
                "finished_at",
                "queued_at",
                "attempts",
            ]
        )
        # A task that cannot be published leaves the session queued; the sweep publishes it later.
        transaction.on_commit(lambda: enqueue_processing(locked.pk))
    logger.info("session %s queued for a re-count with set %s as the exemplar", locked.pk, chosen.pk)
    return locked
