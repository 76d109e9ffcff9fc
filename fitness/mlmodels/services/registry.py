"""Registering model versions: an uploaded file, or the model shipped with the code."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from inference.model import DEFAULT_MODEL_PATH, ModelFileError, file_checksum

from ..models import EvaluationStatus, ModelVersion, Source, Stage
from ..validation import ValidatedModelFile, validate_model_file
from .common import jsonable
from .stages import model_version_activate

if TYPE_CHECKING:
    from fitness.accounts.models import User

logger = logging.getLogger(__name__)


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
                **jsonable(overall),
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
