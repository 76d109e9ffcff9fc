"""Labelled uploaded sessions as evaluation datasets for the model registry.

Registered as the registry's ``sessions`` dataset source (:mod:`fitness.mlmodels.extensions`)
by this app's ``ready()``: an admin names sessions, or lists them once as evaluation sessions
(:class:`~fitness.workouts.models.EvaluationSession`) to be used by default.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from fitness.mlmodels.extensions import DatasetSource
from fitness.mlmodels.services import RegistryError
from inference.io import Recording, RecordingError, read_recording

from ..models import EvaluationSession, RecordingFormat, SensorSession

KIND = "sessions"


def labelled_sessions(session_ids: Iterable[uuid.UUID | str]) -> list[SensorSession]:
    """Sessions usable for evaluation: stored in Exermote format, with phase labels.

    Raises:
        RegistryError: naming the first session that does not exist or carries no labels.
    """
    return [session for session, _ in _labelled_recordings(session_ids)]


def _labelled_recordings(session_ids: Iterable[uuid.UUID | str]) -> list[tuple[SensorSession, Recording]]:
    ids = list(dict.fromkeys(uuid.UUID(str(i)) for i in session_ids))
    found = SensorSession.objects.in_bulk(ids)
    out = []
    for sid in ids:
        session = found.get(sid)
        if session is None:
            raise RegistryError(f"session {sid} does not exist")
        if session.format != RecordingFormat.EXERMOTE:
            raise RegistryError(
                f"session {sid} is in {session.format} format; evaluation needs labelled exermote files"
            )
        try:
            with session.file.open("rb") as fh:
                recording = read_recording(fh, session.format)
        except (OSError, RecordingError) as exc:
            raise RegistryError(f"session {sid} cannot be read: {exc}") from exc
        if recording.labels is None:
            raise RegistryError(f"session {sid} carries no phase labels")
        out.append((session, recording))
    return out


def resolve(session_ids: list[str]) -> dict:
    """The dataset of the named sessions. Raises RegistryError naming an unusable one."""
    return {"kind": KIND, "sessions": [str(s.pk) for s in labelled_sessions(session_ids)]}


def load(dataset: dict) -> tuple[list[Recording], dict]:
    """``(recordings, description)``, read in the worker. Raises RegistryError."""
    pairs = _labelled_recordings(dataset.get("sessions") or [])
    return [rec for _, rec in pairs], {"kind": KIND, "sessions": [str(s.pk) for s, _ in pairs]}


def default() -> dict | None:
    """The configured evaluation sessions, or None when there are none."""
    configured = [str(pk) for pk in EvaluationSession.objects.values_list("session_id", flat=True)]
    return {"kind": KIND, "sessions": configured, "configured": True} if configured else None


SOURCE = DatasetSource(kind=KIND, resolve=resolve, load=load, default=default)
