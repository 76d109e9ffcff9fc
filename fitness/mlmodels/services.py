"""Writes for the model registry (views, the admin, commands and tasks call these).

- Registering: :func:`model_version_create` stores a file that passed
  :func:`~fitness.mlmodels.validation.validate_model_file`;
  :func:`register_shipped_model` registers the model shipped with the code.
- Stages: :func:`model_version_activate` (also the rollback) and
  :func:`model_version_set_stage`; every change is logged in ``ModelStageChange``.
- Evaluation: :func:`model_version_queue_evaluation` (web) and
  :func:`model_version_evaluate` (worker).
- Shadow counting: :func:`shadow_queue` after a session is done, :func:`shadow_count` (worker).
- Reprocessing: :func:`sessions_reprocess` re-counts sessions with the production version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from fitness.workouts.models import RecordingFormat, SensorSession
from inference.io import Recording, RecordingError, read_recording
from inference.model import DEFAULT_MODEL_PATH, ModelFileError, file_checksum

from .models import (
    SETTABLE_STAGE_CHOICES,
    EvaluationSession,
    EvaluationStatus,
    ModelStageChange,
    ModelVersion,
    ShadowResult,
    Source,
    Stage,
)
from .runtime import load_version_model
from .validation import ValidatedModelFile, validate_model_file

if TYPE_CHECKING:
    from fitness.accounts.models import User

logger = logging.getLogger(__name__)

#: Longest error text stored on a version or a shadow result.
MAX_ERROR_CHARS = 2000
#: Rows per UPDATE when many sessions are reprocessed (SQLite limits query parameters).
REPROCESS_CHUNK = 500


class RegistryError(ValueError):
    """A registry operation that is refused; the message says why (shown to admins)."""


# --- Registering -------------------------------------------------------------------


def model_version_create(
    *, upload: ValidatedModelFile, user: User | None, notes: str = "", source: str = Source.UPLOAD
) -> ModelVersion:
    """Store a validated model file as a new version in stage ``none``.

    Raises:
        ModelFileError: the file, or another file with its version string, is already
            registered (nothing is stored).
    """
    refuse_registered(upload)
    version = ModelVersion(
        version=upload.version,
        checksum=upload.checksum,
        size_bytes=len(upload.data),
        metadata=upload.metadata,
        source=source,
        stage=Stage.NONE,
        notes=notes or "",
        uploaded_by=user,
    )
    try:
        with transaction.atomic():
            version.file.save(f"{upload.checksum}.keras", ContentFile(upload.data), save=False)
            version.save(force_insert=True)
    except IntegrityError:
        # A concurrent upload of the same file or version won the race: say which.
        version.file.delete(save=False)
        refuse_registered(upload)
        raise
    except BaseException:
        if version.file.name:
            version.file.delete(save=False)
        raise
    logger.info("model version %s registered (id %s, %s)", version.version, version.pk, source)
    return version


def refuse_registered(upload: ValidatedModelFile) -> None:
    """Raise ModelFileError if the file, or another file with its version, is registered."""
    existing = ModelVersion.objects.filter(Q(checksum=upload.checksum) | Q(version=upload.version)).first()
    if existing is None:
        return
    if existing.checksum == upload.checksum:
        raise ModelFileError(f"this file is already registered as version {existing.version} (id {existing.pk})")
    raise ModelFileError(
        f"version {upload.version!r} is already registered (id {existing.pk}) with a different file; "
        "a new model needs a new version in its metadata"
    )


def register_shipped_model(*, path: Path | str = DEFAULT_MODEL_PATH) -> tuple[ModelVersion, bool]:
    """Register the model file shipped with the code; idempotent by checksum.

    The new version becomes ``production`` when no version is, or when production is an
    earlier shipped model (a deploy updates the default; an uploaded version an admin
    activated is kept). Its metrics are the leave-one-subject-out figures its metadata
    carries. Returns ``(version, created)``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ModelFileError: the file is invalid, or its version string is taken by another file.
    """
    path = Path(path)
    existing = ModelVersion.objects.filter(checksum=file_checksum(path)).first()
    created = existing is None
    if created:
        validated = validate_model_file(path.read_bytes())
        version = model_version_create(
            upload=validated, user=None, notes="shipped default model", source=Source.SHIPPED
        )
        overall = (validated.metadata.get("evaluation") or {}).get("overall")
        if overall:
            version.metrics = {
                **_jsonable(overall),
                "dataset": {"kind": "loso", "description": "leave-one-subject-out figures from the model's metadata"},
            }
            version.evaluation_status = EvaluationStatus.DONE
            version.evaluated_at = timezone.now()
            version.save(update_fields=["metrics", "evaluation_status", "evaluated_at"])
    else:
        version = existing
    production = ModelVersion.objects.filter(stage=Stage.PRODUCTION).first()
    if production is None or (created and production.source == Source.SHIPPED):
        version = model_version_activate(version=version, user=None, note="shipped default model")
    return version, created


# --- Stages ------------------------------------------------------------------------


def _lock_registry() -> None:
    """Lock every version row, in id order, until the transaction ends.

    Every stage change takes this lock first, so concurrent changes run one after the
    other and each sees the stages the previous one committed (PostgreSQL; SQLite
    serialises write transactions by itself).
    """
    list(ModelVersion.objects.select_for_update().order_by("pk").values_list("pk", flat=True))


def _change_stage(version: ModelVersion, to_stage: str, *, user: User | None, note: str = "") -> None:
    from_stage = version.stage
    version.stage = to_stage
    version.save(update_fields=["stage"])
    ModelStageChange.objects.create(
        version=version, from_stage=from_stage, to_stage=to_stage, changed_by=user, note=(note or "")[:255]
    )
    logger.info("model version %s: %s -> %s (by %s)", version.version, from_stage, to_stage, user or "system")


def _check_stored_file(version: ModelVersion) -> None:
    """The stored file exists and is the registered one (before it may count)."""
    digest = hashlib.sha256()
    try:
        with version.file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise RegistryError(f"the file of version {version.version} cannot be read: {exc}") from exc
    if digest.hexdigest() != version.checksum:
        raise RegistryError(f"the stored file of version {version.version} does not match its checksum")


def model_version_activate(*, version: ModelVersion | int, user: User | None, note: str = "") -> ModelVersion:
    """Make a version ``production``; the previous production version becomes ``archived``.

    One transaction under the registry lock, so that concurrent activations serialise and
    exactly one version is production afterwards. Activating an archived version is the
    rollback; activating the production version changes nothing. Workers count with the
    new version from their next task on.

    Raises:
        ModelVersion.DoesNotExist: no such version.
        RegistryError: its stored file is missing or changed.
    """
    pk = getattr(version, "pk", version)
    _check_stored_file(ModelVersion.objects.get(pk=pk))
    with transaction.atomic():
        _lock_registry()
        target = ModelVersion.objects.get(pk=pk)
        if target.stage == Stage.PRODUCTION:
            return target
        for previous in ModelVersion.objects.filter(stage=Stage.PRODUCTION):
            _change_stage(previous, Stage.ARCHIVED, user=user, note=f"replaced by {target.version}")
        target.activated_by = user
        target.activated_at = timezone.now()
        target.save(update_fields=["activated_by", "activated_at"])
        _change_stage(target, Stage.PRODUCTION, user=user, note=note)
    return target


#: Stages :func:`model_version_set_stage` can give; production goes through activation.
SETTABLE_STAGES = tuple(value for value, _ in SETTABLE_STAGE_CHOICES)


def model_version_set_stage(
    *, version: ModelVersion | int, stage: str, user: User | None, note: str = ""
) -> ModelVersion:
    """Put a version in ``staging`` (shadow counting), ``none`` or ``archived``.

    Raises:
        RegistryError: ``production`` asked for (use activation), the version is production
            (activate another one instead), or a staging version's file is missing.
    """
    if stage not in SETTABLE_STAGES:
        raise RegistryError(
            f"stage must be one of {', '.join(SETTABLE_STAGES)}; activate a version to make it production"
        )
    pk = getattr(version, "pk", version)
    if stage == Stage.STAGING:
        _check_stored_file(ModelVersion.objects.get(pk=pk))
    with transaction.atomic():
        _lock_registry()
        target = ModelVersion.objects.get(pk=pk)
        if target.stage == stage:
            return target
        if target.stage == Stage.PRODUCTION:
            raise RegistryError("the production version keeps its stage until another version is activated")
        _change_stage(target, stage, user=user, note=note)
    return target


# --- Evaluation --------------------------------------------------------------------


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


def evaluation_dataset(*, session_ids: Iterable[uuid.UUID | str] | None = None) -> dict:
    """What an evaluation runs on (JSON, passed to the task and stored with the metrics).

    The given labelled sessions; else the sessions configured in ``EvaluationSession``;
    else the shipped evaluation manifest (``settings.FITNESS_EVALUATION_MANIFEST``).

    Raises:
        RegistryError: a given session is unusable.
    """
    if session_ids:
        return {"kind": "sessions", "sessions": [str(s.pk) for s in labelled_sessions(session_ids)]}
    configured = [str(pk) for pk in EvaluationSession.objects.values_list("session_id", flat=True)]
    if configured:
        return {"kind": "sessions", "sessions": configured, "configured": True}
    return {"kind": "manifest", "manifest": str(settings.FITNESS_EVALUATION_MANIFEST)}


def model_version_queue_evaluation(
    *, version: ModelVersion | int, user: User | None, session_ids: Iterable[uuid.UUID | str] | None = None
) -> ModelVersion:
    """Queue the evaluation of a version (status ``queued``); the task runs after commit.

    Raises:
        ModelVersion.DoesNotExist; RegistryError: a given session is unusable.
    """
    dataset = evaluation_dataset(session_ids=session_ids)
    pk = getattr(version, "pk", version)
    with transaction.atomic():
        target = ModelVersion.objects.select_for_update().get(pk=pk)
        target.evaluation_status = EvaluationStatus.QUEUED
        target.evaluation_error = ""
        target.save(update_fields=["evaluation_status", "evaluation_error"])
        transaction.on_commit(lambda: _enqueue_evaluation(pk, dataset))
    logger.info("evaluation of model version %s queued by %s on %s", target.version, user, dataset["kind"])
    return target


def _enqueue_evaluation(version_id: int, dataset: dict) -> None:
    from workers.tasks import evaluate_model_version

    try:
        evaluate_model_version.delay(version_id, dataset)
    except Exception as exc:  # noqa: BLE001 - the broker is down: say so, staff can ask again
        logger.warning("evaluation of model version %s could not be queued: %s", version_id, exc)
        _evaluation_failed(version_id, "the evaluation could not be queued (task broker unavailable); ask again")


def _evaluation_recordings(dataset: dict) -> tuple[list, dict]:
    """``(recordings, description)`` for a dataset of :func:`evaluation_dataset`."""
    if dataset.get("kind") == "sessions":
        pairs = _labelled_recordings(dataset["sessions"])
        return [rec for _, rec in pairs], {"kind": "sessions", "sessions": [str(s.pk) for s, _ in pairs]}
    manifest_path = Path(str(dataset.get("manifest") or settings.FITNESS_EVALUATION_MANIFEST))
    try:
        manifest = json.loads(manifest_path.read_text())
        root = Path(manifest["root"])
        files = [str(f) for f in manifest["files"]]
        fmt = str(manifest.get("format", RecordingFormat.EXERMOTE))
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
    """
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("model version %s no longer exists; nothing to evaluate", version_id)
        return None
    ModelVersion.objects.filter(pk=version_id).update(evaluation_status=EvaluationStatus.RUNNING, evaluation_error="")
    try:
        from inference.scoring import evaluate_model

        model = load_version_model(version)
        recordings, described = _evaluation_recordings(dataset)
        figures = evaluate_model(model, recordings)
    except (ModelFileError, RegistryError, RecordingError, ValueError, OSError) as exc:
        logger.info("evaluation of model version %s failed: %s", version.version, exc)
        return _evaluation_failed(version_id, str(exc))
    except Exception as exc:
        logger.exception("model version %s: unexpected error while evaluating", version.version)
        return _evaluation_failed(version_id, f"internal error while evaluating ({type(exc).__name__})")
    metrics = {**_jsonable(figures), "dataset": described}
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


def _jsonable(value: dict) -> dict:
    """Plain JSON types (NumPy scalars become floats)."""
    return json.loads(json.dumps(value, default=float))


# --- Shadow counting ---------------------------------------------------------------


def shadow_queue(*, session_id: uuid.UUID | str) -> list[int]:
    """Queue shadow counting of a done session by every ``staging`` version. Returns their ids."""
    version_ids = list(ModelVersion.objects.filter(stage=Stage.STAGING).values_list("pk", flat=True))
    if version_ids:
        transaction.on_commit(lambda: _enqueue_shadow(str(session_id), version_ids))
    return version_ids


def _enqueue_shadow(session_id: str, version_ids: list[int]) -> None:
    from workers.tasks import shadow_count_session

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
    production_sets = session.sets.count()
    agrees = not error and total == session.total_reps and len(sets) == production_sets
    shadow, _ = ShadowResult.objects.update_or_create(
        session=session,
        model_version=version,
        defaults={
            "total_reps": total,
            "sets": _jsonable({"sets": sets})["sets"],
            "production_version": session.model_version,
            "production_total_reps": session.total_reps,
            "production_sets": production_sets,
            "agrees": agrees,
            "error": error,
        },
    )
    return shadow


# --- Reprocessing ------------------------------------------------------------------


def sessions_reprocess(*, session_ids: Iterable[uuid.UUID | str] | None = None) -> tuple[list[str], list[str]]:
    """Re-count sessions (``None``: all) with the production version, as Celery tasks.

    Sessions that are ``done`` or ``failed`` go back to ``queued``; their old result stays
    until the worker replaces it in one transaction (``session_save_result``), so nothing
    is counted twice and statistics follow. Sessions already queued or processing are
    skipped (they will be counted anyway). Returns ``(queued ids, skipped ids)``; skipped
    lists requested ids only.
    """
    requested = None if session_ids is None else list(dict.fromkeys(str(uuid.UUID(str(s))) for s in session_ids))
    with transaction.atomic():
        rows = SensorSession.objects.select_for_update().filter(
            status__in=[SensorSession.Status.DONE, SensorSession.Status.FAILED]
        )
        if requested is not None:
            rows = rows.filter(pk__in=requested)
        ids = [str(pk) for pk in rows.order_by("created_at").values_list("pk", flat=True)]
        for start in range(0, len(ids), REPROCESS_CHUNK):
            SensorSession.objects.filter(pk__in=ids[start : start + REPROCESS_CHUNK]).update(
                status=SensorSession.Status.QUEUED,
                error="",
                started_at=None,
                finished_at=None,
                queued_at=timezone.now(),
                attempts=0,
            )
        transaction.on_commit(lambda: _enqueue_reprocessing(ids))
    queued = set(ids)
    skipped = [] if requested is None else [sid for sid in requested if sid not in queued]
    logger.info("reprocessing %d sessions (%d skipped)", len(ids), len(skipped))
    return ids, skipped


def _enqueue_reprocessing(session_ids: list[str]) -> None:
    # Sessions whose task cannot be published stay queued; the sweep publishes them later.
    from fitness.workouts.services import sessions_enqueue

    sessions_enqueue(session_ids)
