"""Evaluating a model version on labelled recordings: queued from the web, run by a worker.

Datasets: the shipped evaluation manifest, or a kind another app registered
(:mod:`fitness.mlmodels.extensions`; the workouts app registers labelled ``sessions``).
A counter version (``kind: counter``) has no phases to score: it is evaluated on datasets of true
set counts only (``truth == "sets"``: users' ``corrections``, its default), by
:func:`inference.scoring.evaluate_counter_on_sets`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inference.io import RecordingError, read_recording
from inference.model import ModelFileError

from .. import extensions
from ..models import EvaluationStatus, Kind, ModelVersion
from ..runtime import load_version_counter, load_version_model
from .common import MAX_ERROR_CHARS, RegistryError, jsonable

if TYPE_CHECKING:
    from fitness.accounts.models import User

logger = logging.getLogger(__name__)


#: The dataset kind an admin's list of ids refers to (registered by the workouts app).
SESSIONS = "sessions"
#: The dataset kind a counter version is evaluated on when none is named: users' corrections.
COUNTER_DEFAULT = "corrections"


def evaluation_dataset(*, session_ids: Iterable[uuid.UUID | str] | None = None, kind: str | None = None) -> dict:
    """What an evaluation runs on (JSON, passed to the task and stored with the metrics).

    With ``kind``, that registered source's dataset of the given ids (the source chooses when
    none are given; e.g. ``corrections``: the sessions users corrected). Else the given
    labelled sessions; else the first registered source's default (the sessions configured
    as evaluation sessions); else the shipped evaluation manifest
    (``settings.FITNESS_EVALUATION_MANIFEST``).

    Raises:
        RegistryError: a given session is unusable, or no app provides datasets of the kind.
    """
    if kind:
        source = extensions.dataset_source(kind)
        if source is None:
            raise RegistryError(f"no app provides evaluation datasets of kind {kind!r}")
        try:
            return source.resolve([str(s) for s in session_ids or []])
        except ValueError as exc:
            raise RegistryError(str(exc)) from exc
    if session_ids:
        source = extensions.dataset_source(SESSIONS)
        if source is None:
            raise RegistryError("evaluating on sessions is not available (no app provides them)")
        try:
            return source.resolve([str(s) for s in session_ids])
        except ValueError as exc:  # RegistryError included: the source's message names the session
            raise RegistryError(str(exc)) from exc
    for source in extensions.dataset_sources():
        dataset = source.default()
        if dataset:
            return dataset
    return {"kind": "manifest", "manifest": str(settings.FITNESS_EVALUATION_MANIFEST)}


def model_version_queue_evaluation(
    *,
    version: ModelVersion | int,
    user: User | None,
    session_ids: Iterable[uuid.UUID | str] | None = None,
    kind: str | None = None,
) -> ModelVersion:
    """Queue the evaluation of a version (status ``queued``) on :func:`evaluation_dataset`;
    the task runs after commit.

    A counter version is evaluated on true set counts only: ``kind`` defaults to
    :data:`COUNTER_DEFAULT` for it, and a dataset of labels is refused.

    Raises:
        ModelVersion.DoesNotExist; RegistryError: a given session is unusable, or a counter
            version is asked to be evaluated on labels (``field="dataset"``).
    """
    pk = getattr(version, "pk", version)
    if ModelVersion.objects.filter(pk=pk, kind=Kind.COUNTER).exists():
        kind = kind or COUNTER_DEFAULT
        if _truth_of({"kind": kind}) != "sets":
            raise RegistryError(
                f"a counter version is evaluated on true set counts (dataset {COUNTER_DEFAULT!r}), not on "
                f"{kind!r}: it has no phases to score",
                field="dataset",
            )
    dataset = evaluation_dataset(session_ids=session_ids, kind=kind)
    with transaction.atomic():
        target = ModelVersion.objects.select_for_update().get(pk=pk)
        target.evaluation_status = EvaluationStatus.QUEUED
        target.evaluation_error = ""
        target.save(update_fields=["evaluation_status", "evaluation_error"])
        transaction.on_commit(lambda: _enqueue_evaluation(pk, dataset))
    logger.info("evaluation of model version %s queued by %s on %s", target.version, user, dataset["kind"])
    return target


def _enqueue_evaluation(version_id: int, dataset: dict) -> None:
    from ..tasks import evaluate_model_version

    try:
        evaluate_model_version.delay(version_id, dataset)
    except Exception as exc:  # noqa: BLE001 - the broker is down: say so, staff can ask again
        logger.warning("evaluation of model version %s could not be queued: %s", version_id, exc)
        _evaluation_failed(version_id, "the evaluation could not be queued (task broker unavailable); ask again")


def _truth_of(dataset: dict) -> str:
    """``labels`` or ``sets``: what the dataset's recordings carry (see ``DatasetSource.truth``)."""
    source = extensions.dataset_source(str(dataset.get("kind", "manifest")))
    return source.truth if source is not None else "labels"


def _evaluation_recordings(dataset: dict) -> tuple[list, dict]:
    """``(recordings, description)`` for a dataset of :func:`evaluation_dataset`."""
    kind = dataset.get("kind", "manifest")
    if kind != "manifest":
        source = extensions.dataset_source(kind)
        if source is None:
            raise RegistryError(f"no app provides evaluation datasets of kind {kind!r}")
        return source.load(dataset)
    manifest_path = Path(str(dataset.get("manifest") or settings.FITNESS_EVALUATION_MANIFEST))
    try:
        manifest = json.loads(manifest_path.read_text())
        root = Path(manifest["root"])
        files = [str(f) for f in manifest["files"]]
        fmt = str(manifest.get("format", "exermote"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"the evaluation manifest {manifest_path} cannot be read: {exc}") from exc
    if not root.is_absolute():
        root = Path(settings.BASE_DIR) / root
    missing = [f for f in files if not (root / f).is_file()]
    if not files or missing:
        raise RegistryError(f"evaluation files missing under {root.resolve()}: {', '.join(missing) or 'none listed'}")
    recordings = [read_recording(root / f, fmt) for f in files]
    return recordings, {"kind": "manifest", "manifest": manifest_path.name, "files": files}


def model_version_evaluate(*, version_id: int, dataset: dict) -> ModelVersion | None:
    """Evaluate a version on labelled recordings and store the figures (worker side).

    Stores frame accuracy, per-set exact and +-1 counting, count MAE, missed sets and
    phantom repetitions (``inference.scoring.evaluate_model``) with the dataset in
    ``metrics``; status ``done``, or ``failed`` with the reason. Never raises for bad data.
    A dataset of true set counts (``DatasetSource.truth == "sets"``, e.g. users' corrections)
    is scored by ``inference.scoring.evaluate_on_sets`` and stored under ``metrics[kind]``,
    keeping the labelled or LOSO figures beside it.
    """
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("model version %s no longer exists; nothing to evaluate", version_id)
        return None
    ModelVersion.objects.filter(pk=version_id).update(evaluation_status=EvaluationStatus.RUNNING, evaluation_error="")
    try:
        from inference.scoring import evaluate_counter_on_sets, evaluate_model, evaluate_on_sets

        by_sets = _truth_of(dataset) == "sets"
        if version.kind == Kind.COUNTER:
            if not by_sets:
                raise RegistryError(f"a counter version is evaluated on true set counts, not on {dataset.get('kind')}")
            counter = load_version_counter(version)
            recordings, described = _evaluation_recordings(dataset)
            figures = evaluate_counter_on_sets(counter, recordings)
        else:
            model = load_version_model(version)
            recordings, described = _evaluation_recordings(dataset)
            figures = evaluate_on_sets(model, recordings) if by_sets else evaluate_model(model, recordings)
    except (ModelFileError, RegistryError, RecordingError, ValueError, OSError) as exc:
        logger.info("evaluation of model version %s failed: %s", version.version, exc)
        return _evaluation_failed(version_id, str(exc))
    except Exception as exc:
        logger.exception("model version %s: unexpected error while evaluating", version.version)
        return _evaluation_failed(version_id, f"internal error while evaluating ({type(exc).__name__})")
    metrics = {**jsonable(figures), "dataset": described}
    if by_sets:  # beside the labelled / LOSO figures, which stay where they are
        metrics = {**(version.metrics or {}), str(dataset["kind"]): metrics}
    ModelVersion.objects.filter(pk=version_id).update(
        metrics=metrics, evaluation_status=EvaluationStatus.DONE, evaluation_error="", evaluated_at=timezone.now()
    )
    logger.info("model version %s evaluated: %s", version.version, json.dumps(metrics))
    return ModelVersion.objects.get(pk=version_id)


def _evaluation_failed(version_id: int, error: str) -> ModelVersion | None:
    ModelVersion.objects.filter(pk=version_id).update(
        evaluation_status=EvaluationStatus.FAILED, evaluation_error=(error or "unknown error")[:MAX_ERROR_CHARS]
    )
    return ModelVersion.objects.filter(pk=version_id).first()
