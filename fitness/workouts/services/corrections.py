"""Users' corrections of counted sets, and how a re-count keeps them.

A set's ``reps`` is what the user knows; ``counted_reps`` what the counter said. A user
*reviews* a set by confirming its count (a PATCH with the same ``reps``), correcting it
(another ``reps``; 0 marks a phantom set) or adding a set the counter missed: the set's
``reviewed_at`` is set, and reviewed sets are what each model version's live metrics
(:func:`fitness.workouts.selectors.live_metrics`) are computed from. Only ``done`` sessions
take corrections; the session's ``total_reps`` follows them.

Re-counting a session (:func:`keep_corrections`, called by ``session_save_result``) replaces
the sets nobody reviewed and keeps every reviewed one with its ``reps``: a new counted set
that overlaps a kept set in time is absorbed by it (its repetitions and count become the
kept set's ``counted_reps``), and a kept set that no new set overlaps gets
``counted_reps`` 0 (null for a set the user added and no counter has found).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from inference.results import CountedSet, CountResult

from ..models import ExerciseSet, Repetition, SensorSession

logger = logging.getLogger(__name__)

#: Most repetitions a user may give a set (a day of jump rope stays far below).
MAX_SET_REPS = 10_000
#: Set and repetition times are stored to the millisecond (as ``processing.TIME_DECIMALS``).
TIME_DECIMALS = 3
#: Shortest set a user may add, in seconds (after rounding to the millisecond).
MIN_SET_DURATION_S = 1.0
#: Fastest cadence a set's ``reps`` may imply, in repetitions per second: above any human
#: (speed jump rope records stay under 8 rope turns a second; see docs/reliability.md).
MAX_CADENCE_HZ = 10.0
#: Most sets a session may hold for a user to add one (a counted hour stays far below).
MAX_SETS_PER_SESSION = 200


class CorrectionError(ValueError):
    """A correction that cannot be made; ``field`` names the request field at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


class SessionNotDoneError(Exception):
    """The session is not ``done`` (queued, being counted again, or failed): no corrections now."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the session is not counted (status: {status}); corrections need a done session")
        self.status = status


def _locked_done_session(session_id) -> SensorSession:
    session = SensorSession.objects.select_for_update().get(pk=session_id)
    if session.status != SensorSession.Status.DONE:
        raise SessionNotDoneError(session.status)
    return session


def _update_total(session: SensorSession) -> None:
    session.total_reps = session.sets.aggregate(total=Sum("reps"))["total"] or 0
    session.save(update_fields=["total_reps"])


def _check_reps(reps: int, *, minimum: int) -> None:
    if isinstance(reps, bool) or not isinstance(reps, int) or not minimum <= reps <= MAX_SET_REPS:
        raise CorrectionError("reps", f"must be a whole number from {minimum} to {MAX_SET_REPS}")


def max_reps_for(duration_s: float) -> int:
    """Most repetitions a set of ``duration_s`` seconds may hold (``MAX_CADENCE_HZ``), at least 1."""
    return max(1, math.floor(max(duration_s, 0.0) * MAX_CADENCE_HZ + 1e-9))


def _check_cadence(reps: int, *, duration_s: float, allowed: int = 0) -> None:
    """Refuse ``reps`` faster than ``MAX_CADENCE_HZ`` over ``duration_s`` (``allowed``: the
    counter's own count of the set, which a confirmation may always repeat)."""
    limit = max(max_reps_for(duration_s), allowed)
    if reps > limit:
        raise CorrectionError(
            "reps",
            f"at most {limit} over this set's {duration_s:g} s: faster than {MAX_CADENCE_HZ:g} repetitions a "
            "second is beyond any human",
        )


@transaction.atomic
def set_correct(*, exercise_set: ExerciseSet, reps: int) -> ExerciseSet:
    """Set a counted set's ``reps`` to the user's count (the same count confirms it; 0: phantom).

    ``counted_reps`` is left as the counter said; the set becomes reviewed and the session's
    ``total_reps`` follows. One transaction, under the session's row lock (so a re-count
    cannot interleave).

    Raises:
        CorrectionError: ``reps`` outside 0..``MAX_SET_REPS``, or faster than
            ``MAX_CADENCE_HZ`` over the set's duration (beyond what the counter said).
        SessionNotDoneError: the session is queued, being counted or failed.
    """
    _check_reps(reps, minimum=0)
    session = _locked_done_session(exercise_set.session_id)
    target = ExerciseSet.objects.select_for_update().get(pk=exercise_set.pk)
    _check_cadence(reps, duration_s=target.end_s - target.start_s, allowed=target.counted_reps or 0)
    target.reps = reps
    target.reviewed_at = timezone.now()
    target.save(update_fields=[*_SET_STAMP_FIELDS, "reps", "reviewed_at"])
    _update_total(session)
    logger.info("set %s of session %s reviewed: %s (counted %s)", target.pk, session.pk, reps, target.counted_reps)
    return target


@transaction.atomic
def set_add(*, session: SensorSession, exercise: str, reps: int, start_s: float, end_s: float) -> ExerciseSet:
    """Add a set the counter missed to a done session (``origin`` user, ``counted_reps`` null).

    Times are seconds from the recording's first sample, stored and checked to the
    millisecond: ``0 <= start_s``, ``end_s - start_s >= MIN_SET_DURATION_S``, ``end_s <=
    duration_s``; ``reps`` at most ``MAX_CADENCE_HZ`` a second over the set. The set may not
    overlap a set with repetitions (correct that one instead; a phantom set, corrected to 0,
    may be overlapped), and the session may hold at most ``MAX_SETS_PER_SESSION`` sets. The
    sets are renumbered in time order.

    Raises:
        CorrectionError: naming ``reps``, ``start_s`` or ``end_s`` (``non_field_errors``: the
            session holds ``MAX_SETS_PER_SESSION`` sets).
        SessionNotDoneError: the session is queued, being counted or failed.
    """
    _check_reps(reps, minimum=1)
    for name, value in (("start_s", start_s), ("end_s", end_s)):
        if not math.isfinite(value):
            raise CorrectionError(name, "must be a finite number of seconds")
    # Checked as stored: 5.0001-5.0004 would be kept as 5.0-5.0.
    start_s, end_s = round(start_s, TIME_DECIMALS), round(end_s, TIME_DECIMALS)
    locked = _locked_done_session(session.pk)
    if start_s < 0:
        raise CorrectionError("start_s", "must be at least 0 (seconds from the recording's first sample)")
    if end_s > locked.duration_s:
        raise CorrectionError("end_s", f"must be at most the session's duration ({locked.duration_s:g} s)")
    if end_s - start_s < MIN_SET_DURATION_S - 1e-9:
        raise CorrectionError("end_s", f"must be at least {MIN_SET_DURATION_S:g} s after start_s (to the millisecond)")
    _check_cadence(reps, duration_s=round(end_s - start_s, TIME_DECIMALS))
    if locked.sets.count() >= MAX_SETS_PER_SESSION:
        raise CorrectionError(
            "non_field_errors", f"the session already holds {MAX_SETS_PER_SESSION} sets, the most it may"
        )
    clash = locked.sets.filter(reps__gt=0, start_s__lt=end_s, end_s__gt=start_s).order_by("index").first()
    if clash is not None:
        raise CorrectionError(
            "start_s", f"the set overlaps set {clash.pk} ({clash.start_s:g}-{clash.end_s:g} s); correct that one"
        )
    existing = list(locked.sets.order_by("start_s", "index"))
    added = ExerciseSet.objects.create(
        session=locked,
        user_id=locked.user_id,
        index=max((s.index for s in existing), default=-1) + 1,
        exercise=exercise,
        method=ExerciseSet.Method.MANUAL,
        origin=ExerciseSet.Origin.USER,
        reps=reps,
        counted_reps=None,
        reviewed_at=timezone.now(),
        start_s=start_s,
        end_s=end_s,
        performed_at=_session_origin(locked) + timedelta(seconds=start_s),
    )
    _renumber(sorted([*existing, added], key=lambda s: (s.start_s, s.end_s, s.pk)))
    _update_total(locked)
    added.refresh_from_db()
    logger.info("set %s added to session %s by the user: %s x%d", added.pk, locked.pk, exercise, reps)
    return added


def _session_origin(session: SensorSession):
    """The instant a set's ``start_s`` counts from (what ``session_save_result`` dates sets by)."""
    return getattr(session, "started_at", None) or session.created_at


#: Fields a set's save must also write so that its change time follows (sync); filled in when
#: the model has them.
_SET_STAMP_FIELDS: tuple[str, ...] = tuple(f.name for f in ExerciseSet._meta.concrete_fields if f.name == "updated_at")


def _renumber(sets_in_order: list[ExerciseSet]) -> None:
    """Give ``sets_in_order`` the indexes 0, 1, ... without breaking (session, index) uniqueness."""
    wanted = [(s, i) for i, s in enumerate(sets_in_order) if s.index != i]
    if not wanted:
        return
    parking = max(*(s.index for s in sets_in_order), len(sets_in_order)) + 1
    for n, (s, _) in enumerate(wanted):  # first out of the way of every final index
        ExerciseSet.objects.filter(pk=s.pk).update(index=parking + n)
    for s, i in wanted:
        s.index = i
        s.save(update_fields=[*_SET_STAMP_FIELDS, "index"])


# --- Re-counting keeps reviewed sets ----------------------------------------------------


@dataclass
class KeptCorrections:
    """What :func:`keep_corrections` decided for one re-count.

    ``absorbed``: indexes into ``result.sets`` that a kept set took over (not to be created);
    ``index_of``: the final index of each new set to create; ``kept``: reviewed sets kept.
    """

    kept: int = 0
    absorbed: set[int] = field(default_factory=set)
    index_of: dict[int, int] = field(default_factory=dict)
    _final: list[tuple[ExerciseSet, int]] = field(default_factory=list)

    def finish(self) -> None:
        """Move the kept sets to their final indexes (after the new sets are created)."""
        for kept_set, index in self._final:
            kept_set.index = index
            kept_set.save(update_fields=[*_SET_STAMP_FIELDS, "index"])


def _overlap(kept: ExerciseSet, counted: CountedSet) -> float:
    return min(kept.end_s, counted.end_s) - max(kept.start_s, counted.start_s)


def keep_corrections(
    *, session: SensorSession, result: CountResult, exemplar_set_id: int | None = None
) -> KeptCorrections:
    """Delete the session's unreviewed sets and merge ``result`` into the reviewed ones.

    Each new counted set goes to the kept set it overlaps most in time (if any): the kept
    set's ``counted_reps`` becomes the sum of what it absorbed, its ``method`` and
    repetitions the counter's; ``reps``, exercise and times stay the user's. Kept sets
    are parked above every index in use, so that the caller can create the new sets at
    their final indexes (``index_of``) and then call :meth:`KeptCorrections.finish`. A kept
    set's ``exemplar_set`` becomes ``exemplar_set_id`` where a set it absorbed was counted with
    the exemplar (never itself), else null.
    Call inside the transaction that holds the session's row lock.
    """
    kept = list(session.sets.filter(reviewed_at__isnull=False).order_by("start_s", "index"))
    session.sets.filter(reviewed_at__isnull=True).delete()
    plan = KeptCorrections(kept=len(kept))
    if not kept:
        plan.index_of = {i: i for i in range(len(result.sets))}
        return plan
    takes: dict[int, list[CountedSet]] = {s.pk: [] for s in kept}
    for i, counted in enumerate(result.sets):
        best = max(kept, key=lambda s, c=counted: _overlap(s, c))
        if _overlap(best, counted) > 0:
            takes[best.pk].append(counted)
            plan.absorbed.add(i)
    parking = max(*(s.index for s in kept), len(kept) + len(result.sets)) + 1
    Repetition.objects.filter(set__in=kept).delete()
    repetitions = []
    for n, kept_set in enumerate(kept):
        got = takes[kept_set.pk]
        if got:
            kept_set.counted_reps = sum(c.reps for c in got)
            kept_set.method = max(got, key=lambda c: c.reps).method
        else:
            kept_set.counted_reps = None if kept_set.origin == ExerciseSet.Origin.USER else 0
        used = exemplar_set_id is not None and exemplar_set_id != kept_set.pk and any(c.used_exemplar for c in got)
        kept_set.exemplar_set_id = exemplar_set_id if used else None
        kept_set.index = parking + n
        kept_set.save(update_fields=[*_SET_STAMP_FIELDS, "counted_reps", "method", "exemplar_set", "index"])
        reps = sorted((r for c in got for r in c.repetitions), key=lambda r: r.start_s)
        repetitions += [
            Repetition(
                set=kept_set,
                index=i,
                start_s=round(r.start_s, TIME_DECIMALS),
                end_s=round(r.end_s, TIME_DECIMALS),
            )
            for i, r in enumerate(reps)
        ]
    Repetition.objects.bulk_create(repetitions)
    order = sorted(
        [(s.start_s, 0, s.pk, s) for s in kept]
        + [(c.start_s, 1, i, None) for i, c in enumerate(result.sets) if i not in plan.absorbed],
        key=lambda item: item[:3],
    )
    for final, (_, is_new, key, kept_set) in enumerate(order):
        if is_new:
            plan.index_of[key] = final
        else:
            plan._final.append((kept_set, final))
    return plan


def total_reps_after(*, session: SensorSession, result: CountResult, plan: KeptCorrections) -> int:
    """The session's ``total_reps`` after a re-count: the counter's total, or with kept
    corrections the sum of every set's ``reps``."""
    if not plan.kept:
        return result.total_reps
    return session.sets.aggregate(total=Sum("reps"))["total"] or 0


def reviewed_set_count(*, session_ids: list[str]) -> int:
    """Reviewed sets in the given sessions: what a re-count of them keeps."""
    chunk = 500  # SQLite limits query parameters
    return sum(
        ExerciseSet.objects.filter(session__in=session_ids[i : i + chunk], reviewed_at__isnull=False).count()
        for i in range(0, len(session_ids), chunk)
    )
