"""Shadow counting: every ``staging`` model version counts each done session beside production.

What it counts is stored apart (:class:`~fitness.workouts.models.ShadowResult`), never shown to
users; the registry shows each version's agreement through the ``shadow`` summary
(:func:`fitness.workouts.selectors.shadow_summaries`).
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce

from fitness.mlmodels.models import ModelVersion, Stage
from fitness.mlmodels.runtime import load_version_model
from fitness.mlmodels.services import MAX_ERROR_CHARS, jsonable
from inference.io import read_recording

from ..models import SensorSession, ShadowResult

logger = logging.getLogger(__name__)


def shadow_queue(*, session_id: uuid.UUID | str) -> list[int]:
    """Queue shadow counting of a done session by every ``staging`` version. Returns their ids."""
    version_ids = list(ModelVersion.objects.filter(stage=Stage.STAGING).values_list("pk", flat=True))
    if version_ids:
        transaction.on_commit(lambda: _enqueue_shadow(str(session_id), version_ids))
    return version_ids


def _enqueue_shadow(session_id: str, version_ids: list[int]) -> None:
    from ..tasks import shadow_count_session

    for version_id in version_ids:
        shadow_count_session.delay(session_id, version_id)


def shadow_count(*, session_id: uuid.UUID | str, version_id: int) -> ShadowResult | None:
    """Count a done session with a staging version; store it apart from the session's result.

    Agreement means the same total repetitions and the same number of sets as production.
    Returns None (stores nothing) when the session is gone or not done, the version is no
    longer staging, or the staging version would not use its classifier on this session
    (peak-counted sessions say nothing about a model).
    """
    from inference.pipeline import choose_method, count_recording

    session = SensorSession.objects.filter(pk=session_id).first()
    version = ModelVersion.objects.filter(pk=version_id).first()
    if session is None or version is None or session.status != SensorSession.Status.DONE:
        return None
    if version.stage != Stage.STAGING:
        logger.info("model version %s is no longer staging; no shadow count", version.version)
        return None
    hint = session.exercise_hint or None
    total, sets, error = None, [], ""
    try:
        model = load_version_model(version)
        with session.file.open("rb") as fh:
            recording = read_recording(fh, session.format)
        if choose_method(recording, model.spec, hint) != "classifier":
            return None
        result = count_recording(recording, model=model, exercise=hint)
        total = result.total_reps
        sets = [
            {"exercise": s.exercise, "reps": s.reps, "start_s": s.start_s, "end_s": s.end_s, "method": s.method}
            for s in result.sets
        ]
    except Exception as exc:
        logger.exception("shadow count of session %s by %s failed", session_id, version.version)
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    # What production counted, not the users' corrections of it (``counted_reps``, not ``reps``).
    production = session.sets.aggregate(
        sets=Count("id", filter=Q(counted_reps__gt=0)), total=Coalesce(Sum("counted_reps"), 0)
    )
    production_sets, production_total = production["sets"], production["total"]
    agrees = not error and total == production_total and len(sets) == production_sets
    shadow, _ = ShadowResult.objects.update_or_create(
        session=session,
        model_version=version,
        defaults={
            "total_reps": total,
            "sets": jsonable({"sets": sets})["sets"],
            "production_version": session.model_version,
            "production_total_reps": production_total,
            "production_sets": production_sets,
            "agrees": agrees,
            "error": error,
        },
    )
    return shadow
