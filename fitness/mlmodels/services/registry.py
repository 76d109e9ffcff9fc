"""Registering model versions: an uploaded file, or the models shipped with the code (the phase
classifier, and the learned counter where its file is shipped)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from inference.density import DEFAULT_COUNTER_PATH
from inference.model import DEFAULT_KERAS_PATH, DEFAULT_MODEL_PATH, ModelFileError, file_checksum

from ..models import EvaluationStatus, Kind, ModelVersion, Source, Stage, ValidationStatus
from ..validation import ValidatedModelFile, validate_counter_file, validate_model_file
from .common import jsonable
from .export import model_version_queue_export
from .stages import model_version_activate
from .validation import model_version_queue_validation

if TYPE_CHECKING:
    from fitness.accounts.models import User

logger = logging.getLogger(__name__)


def model_version_create(
    *, upload: ValidatedModelFile, user: User | None, notes: str = "", source: str = Source.UPLOAD
) -> ModelVersion:
    """Store a model file as a new version in stage ``none``.

    A file that only passed the cheap checks (``upload.checked`` False: an upload) starts
    ``validation_status: pending`` and its full check and export are queued on the admin queue
    after the commit (:func:`~fitness.mlmodels.services.validation.model_version_validate`).
    A fully checked file (:func:`~fitness.mlmodels.validation.validate_model_file`) is ``valid``
    at once: with the export checked beside it (``upload.runtime_data``: the shipped model) both
    are stored now; otherwise the export is queued
    (:func:`~fitness.mlmodels.services.export.model_version_export`) and workers count with the
    ``.keras`` until it is stored. A counter (``upload.kind == "counter"``) is one ``.onnx``,
    stored as the version's ``file``; it has no export.

    Raises:
        ModelFileError: the file, or another file with its version string, is already
            registered (nothing is stored).
    """
    refuse_registered(upload)
    version = ModelVersion(
        version=upload.version,
        kind=upload.kind,
        checksum=upload.checksum,
        size_bytes=len(upload.data),
        runtime_checksum=upload.runtime_checksum,
        runtime_export=upload.runtime_export,
        metadata=upload.metadata,
        validation_status=ValidationStatus.VALID if upload.checked else ValidationStatus.PENDING,
        source=source,
        stage=Stage.NONE,
        notes=notes or "",
        uploaded_by=user,
    )
    try:
        with transaction.atomic():
            suffix = "onnx" if upload.kind == Kind.COUNTER else "keras"
            version.file.save(f"{upload.checksum}.{suffix}", ContentFile(upload.data), save=False)
            if upload.runtime_data:
                version.runtime_file.save(
                    f"{upload.runtime_checksum}.onnx", ContentFile(upload.runtime_data), save=False
                )
            version.save(force_insert=True)
            if not upload.checked:
                model_version_queue_validation(version_id=version.pk)
            elif not upload.runtime_data and upload.kind == Kind.CLASSIFIER:
                model_version_queue_export(version_id=version.pk)
    except IntegrityError:
        # A concurrent upload of the same file or version won the race: say which.
        _delete_files(version)
        refuse_registered(upload)
        raise
    except BaseException:
        _delete_files(version)
        raise
    logger.info("model version %s registered (id %s, %s)", version.version, version.pk, source)
    return version


def _delete_files(version: ModelVersion) -> None:
    """Remove the files a version that was not saved had stored (nothing half-saved)."""
    for stored in (version.file, version.runtime_file):
        if stored.name:
            stored.delete(save=False)


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


def register_shipped_model(
    *, path: Path | str = DEFAULT_KERAS_PATH, runtime_path: Path | str | None = None
) -> tuple[ModelVersion, bool]:
    """Register the model file shipped with the code (``.keras``); idempotent by checksum.

    Its export is ``runtime_path`` (default: the shipped ``default.onnx`` for the shipped
    ``default.keras``, else ``<path>.onnx`` where it exists), checked against the ``.keras``
    and stored with it at once (:func:`~fitness.mlmodels.validation.validate_model_file`);
    without one it is exported now (a command, not a request: it may take a minute).

    The new version becomes ``production`` when no classifier version is, or when production is an
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
        if runtime_path is None:
            shipped = path.resolve() == DEFAULT_KERAS_PATH.resolve()
            runtime_path = DEFAULT_MODEL_PATH if shipped else path.with_suffix(".onnx")
        runtime_path = Path(runtime_path)
        runtime_data = runtime_path.read_bytes() if runtime_path.is_file() else None
        validated = validate_model_file(path.read_bytes(), runtime_data=runtime_data, export=True)
        version = model_version_create(
            upload=validated, user=None, notes="shipped default model", source=Source.SHIPPED
        )
        overall = (validated.metadata.get("evaluation") or {}).get("overall")
        _store_shipped_figures(
            version, overall, kind="loso", description="leave-one-subject-out figures from the model's metadata"
        )
    else:
        version = existing
    _activate_if_default(version, created=created, note="shipped default model")
    version.refresh_from_db()
    return version, created


def _store_shipped_figures(version: ModelVersion, figures: dict | None, *, kind: str, description: str) -> None:
    """Store the figures a shipped file carries as the version's evaluation (nothing without any)."""
    if not figures:
        return
    version.metrics = {**jsonable(figures), "dataset": {"kind": kind, "description": description}}
    version.evaluation_status = EvaluationStatus.DONE
    version.evaluated_at = timezone.now()
    version.save(update_fields=["metrics", "evaluation_status", "evaluated_at"])


def register_shipped_counter(*, path: Path | str = DEFAULT_COUNTER_PATH) -> tuple[ModelVersion, bool] | None:
    """Register the learned counter shipped with the code (``.onnx``); idempotent by checksum.

    None when no file is at ``path`` (nothing registered: the caller decides the default). The
    file is checked in full now (:func:`~fitness.mlmodels.validation.validate_counter_file`: the
    memory-capped child loads it and counts a synthetic recording) and stored ``valid``. As for the
    classifier, it becomes ``production`` when no counter version is, or when the production
    counter is an earlier shipped one; an uploaded counter an admin activated is kept. The
    classifier's production version is never touched. Its metrics are the held-out figures its
    spec carries (``evaluation``), when there are any. Returns ``(version, created)``.

    Raises:
        ModelFileError: the file is invalid, or its version string is taken by another file.
    """
    path = Path(path)
    if not path.is_file():
        return None
    existing = ModelVersion.objects.filter(checksum=file_checksum(path)).first()
    created = existing is None
    if created:
        validated = validate_counter_file(path.read_bytes())
        version = model_version_create(
            upload=validated, user=None, notes="shipped default counter", source=Source.SHIPPED
        )
        _store_shipped_figures(
            version,
            validated.metadata.get("evaluation"),
            kind="held_out",
            description="held-out figures from the counter's spec",
        )
    else:
        version = existing
    if version.kind != Kind.COUNTER:
        raise ModelFileError(f"{path} is registered as a {version.kind} version ({version.version})")
    _activate_if_default(version, created=created, note="shipped default counter")
    version.refresh_from_db()
    return version, created


def _activate_if_default(version: ModelVersion, *, created: bool, note: str) -> None:
    """Activate a shipped version when its kind has no production version, or (a new file) when
    production is an earlier shipped one."""
    production = ModelVersion.objects.filter(stage=Stage.PRODUCTION, kind=version.kind).first()
    if production is None or (created and production.source == Source.SHIPPED):
        model_version_activate(version=version, user=None, note=note)
