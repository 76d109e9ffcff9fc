"""Sessions users corrected as an evaluation dataset: their reviewed counts are the truth.

Registered as the registry's ``corrections`` dataset source (:mod:`fitness.mlmodels.extensions`,
``truth="sets"``) by this app's ``ready()``. A staging version is evaluated on them beside the
shipped leave-one-subject-out figures: each recording is counted by the version as the worker
would, and its counts are compared with the sets users reviewed
(:func:`inference.scoring.evaluate_on_sets`; a counter version by
:func:`inference.scoring.evaluate_counter_on_sets`, on the sets the classifier did not count: each
true set says its ``method``). Sets nobody reviewed have no known truth: what is counted there is
neither scored nor phantom. The source is never the default dataset.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Exists, OuterRef

from fitness.mlmodels.extensions import DatasetSource
from fitness.mlmodels.services import RegistryError
from inference.io import RecordingError, read_recording
from inference.scoring import SetTruth

from ..models import ExerciseSet, SensorSession

KIND = "corrections"


def corrected_sessions() -> list[str]:
    """The newest ``FITNESS_CORRECTION_EVALUATION_MAX`` done sessions with a reviewed set."""
    reviewed = ExerciseSet.objects.filter(session=OuterRef("pk"), reviewed_at__isnull=False)
    rows = (
        SensorSession.objects.filter(Exists(reviewed), status=SensorSession.Status.DONE)
        .order_by("-created_at")
        .values_list("pk", flat=True)[: settings.FITNESS_CORRECTION_EVALUATION_MAX]
    )
    return [str(pk) for pk in rows]


def resolve(session_ids: list[str]) -> dict:
    """The named sessions (each done, with a reviewed set), or all corrected ones when none are named.

    Raises:
        RegistryError: a session does not exist, is not done or has no reviewed set; or there
            are no corrected sessions at all.
    """
    if not session_ids:
        ids = corrected_sessions()
        if not ids:
            raise RegistryError("no session has sets users reviewed yet")
        return {"kind": KIND, "sessions": ids}
    ids = [str(uuid.UUID(str(s))) for s in dict.fromkeys(session_ids)]
    found = {str(pk): status for pk, status in SensorSession.objects.filter(pk__in=ids).values_list("pk", "status")}
    reviewed = {
        str(pk)
        for pk in ExerciseSet.objects.filter(session__in=ids, reviewed_at__isnull=False).values_list(
            "session_id", flat=True
        )
    }
    for sid in ids:
        if sid not in found:
            raise RegistryError(f"session {sid} does not exist")
        if found[sid] != SensorSession.Status.DONE:
            raise RegistryError(f"session {sid} is {found[sid]}; corrections are read from done sessions")
        if sid not in reviewed:
            raise RegistryError(f"session {sid} has no set a user reviewed")
    return {"kind": KIND, "sessions": ids}


def load(dataset: dict) -> tuple[Iterator[SetTruth], dict]:
    """Each session's recording with its reviewed sets as truth (worker side), read lazily.

    The sessions are checked now; their recordings are read one at a time as the returned
    iterator is consumed (:func:`inference.scoring.evaluate_on_sets` counts each before the
    next is read), so memory follows the largest recording, not the sum of
    ``FITNESS_CORRECTION_EVALUATION_MAX`` of them.

    Raises:
        RegistryError: a session does not exist (now), or a recording cannot be read (while
            iterating).
    """
    ids = [str(s) for s in dataset.get("sessions") or []]
    found = {str(pk) for pk in SensorSession.objects.filter(pk__in=ids).values_list("pk", flat=True)}
    for sid in ids:
        if sid not in found:
            raise RegistryError(f"session {sid} does not exist")
    n_sets = ExerciseSet.objects.filter(session__in=ids, reviewed_at__isnull=False, reps__gt=0).count()
    return _read_one_at_a_time(ids), {"kind": KIND, "sessions": ids, "true_sets": n_sets}


def _read_one_at_a_time(ids: list[str]) -> Iterator[SetTruth]:
    for sid in ids:
        session = SensorSession.objects.filter(pk=sid).first()
        if session is None:
            raise RegistryError(f"session {sid} does not exist")
        try:
            with session.file.open("rb") as fh:
                recording = read_recording(fh, session.format)
        except (OSError, RecordingError) as exc:
            raise RegistryError(f"session {sid} cannot be read: {exc}") from exc
        rows = list(ExerciseSet.objects.filter(session=session).order_by("start_s"))
        truth = [
            {"exercise": s.exercise, "reps": s.reps, "start_s": s.start_s, "end_s": s.end_s, "method": s.method}
            for s in rows
            if s.reviewed_at is not None and s.reps > 0
        ]
        unknown = [(s.start_s, s.end_s) for s in rows if s.reviewed_at is None]
        item = SetTruth(recording=recording, sets=truth, unknown=unknown, exercise=session.exercise_hint or None)
        del recording  # the item alone holds it: dropped by the consumer before the next read
        yield item
        del item


SOURCE = DatasetSource(kind=KIND, resolve=resolve, load=load, truth="sets")
