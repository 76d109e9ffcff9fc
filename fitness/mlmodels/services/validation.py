"""The full check of an uploaded version, on the admin queue: the request ran only the cheap checks
(:func:`~fitness.mlmodels.validation.precheck_model_file`) and answered ``pending``.

One task checks the file and makes its ``.onnx`` export in the same child process
(:func:`~fitness.mlmodels.validation.check_registered_file`): TensorFlow loads once, and one
message carries both (the export alone, :mod:`.export`, stays for versions whose export failed or
predates exports). The version ends ``valid`` (with its export, or ``runtime_status: failed`` and
the reason when only the export failed: workers load the ``.keras``) or ``invalid`` with
``validation_error``. A counter version (``kind: counter``) is one ``.onnx``: its check loads it in
ONNX Runtime and counts a synthetic recording in the same memory-capped child
(:func:`~fitness.mlmodels.validation.check_registered_counter`); it has no export.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from fitness.core.storage import StorageUnavailable, is_transient_storage_error
from inference.model import ModelFileError

from ..files import local_model_path
from ..models import Kind, ModelVersion, ValidationStatus
from ..validation import check_registered_counter, check_registered_file
from .common import MAX_ERROR_CHARS
from .export import _export_failed, _store_export, model_version_queue_export

logger = logging.getLogger(__name__)

#: Most versions one sweep queues again (the next sweep takes the rest).
SWEEP_BATCH = 50


def model_version_queue_validation(*, version_id: int) -> None:
    """Queue the full check of a ``pending`` version on the admin queue once the current
    transaction commits, and stamp ``task_queued_at`` (what the sweep reads).

    A task that cannot be published (the broker is down) is logged; the sweep queues it again.
    """
    ModelVersion.objects.filter(pk=version_id).update(task_queued_at=timezone.now())
    transaction.on_commit(lambda: _enqueue_validation(version_id))


def _enqueue_validation(version_id: int) -> None:
    from ..tasks import validate_model_version

    try:
        validate_model_version.delay(version_id)
    except Exception as exc:  # noqa: BLE001 - the broker is down: the sweep queues it again
        logger.warning("validation of model version %s could not be queued: %s", version_id, exc)


def model_version_validate(*, version_id: int) -> ModelVersion | None:
    """Run the full check of a ``pending`` version's stored ``.keras`` and its export (worker side);
    of a counter version, of its ``.onnx``.

    ``valid``: the export is stored too (or ``runtime_export = {"error": reason}`` when only the
    export failed); ``invalid``: ``validation_error`` says why. A version that is no longer
    ``pending`` is left as it is (a redelivered or swept message). Returns the version (None: it
    is gone).

    Raises:
        StorageUnavailable: the object store could not be reached (the task retries).
    """
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("model version %s no longer exists; nothing to validate", version_id)
        return None
    if version.validation_status != ValidationStatus.PENDING:
        logger.info("model version %s is already %s", version.version, version.validation_status)
        return version
    counter = version.kind == Kind.COUNTER
    suffix = ".onnx" if counter else ".keras"
    try:
        path = local_model_path(version.file, checksum=version.checksum)
        checked = None  # a counter has no export
        if counter:
            check_registered_counter(path.read_bytes(), checksum=version.checksum)
        else:
            checked = check_registered_file(path.read_bytes(), checksum=version.checksum)
    except Exception as exc:
        if isinstance(exc, StorageUnavailable) or is_transient_storage_error(exc):
            raise StorageUnavailable(f"model version {version.version}: the {suffix} cannot be read: {exc}") from exc
        if isinstance(exc, FileNotFoundError):
            return _finish(version_id, ValidationStatus.INVALID, f"the stored {suffix} is missing")
        if isinstance(exc, (ModelFileError, OSError)):
            logger.info("model version %s is invalid: %s", version.version, exc)
            return _finish(version_id, ValidationStatus.INVALID, str(exc))
        logger.exception("model version %s: unexpected error while validating", version.version)
        return _finish(
            version_id, ValidationStatus.INVALID, f"internal error while validating ({type(exc).__name__}: {exc})"
        )
    with transaction.atomic():
        if checked is not None and checked.export is not None:
            _store_export(version_id, checked.export)
        elif checked is not None:
            logger.info("model version %s is valid; its export failed: %s", version.version, checked.export_error)
            _export_failed(version_id, checked.export_error)
        return _finish(version_id, ValidationStatus.VALID, "")


def _finish(version_id: int, status: str, error: str) -> ModelVersion | None:
    ModelVersion.objects.filter(pk=version_id, validation_status=ValidationStatus.PENDING).update(
        validation_status=status, validation_error=(error or "")[:MAX_ERROR_CHARS]
    )
    if status == ValidationStatus.INVALID and not error:
        logger.warning("model version %s invalid without a reason", version_id)
    return ModelVersion.objects.filter(pk=version_id).first()


def model_versions_requeue_stale(*, pending_after_s: float | None = None) -> list[int]:
    """Queue again the validations and exports that stayed pending too long; returns the version ids.

    - ``validation_status: pending`` and its task queued more than ``pending_after_s`` ago
      (default ``FITNESS_SWEEP_MODEL_PENDING_AFTER_S``), or never: the message or its worker was
      lost. Its validation is queued again.
    - a ``valid`` classifier with ``runtime_status: pending`` (no export, no export error), queued as long ago
      or never: its export is queued again.

    ``task_queued_at`` is stamped in the same transaction (rows locked, others' locked rows
    skipped), so a version is queued again at most once per ``pending_after_s``. A duplicate task
    is harmless: a version that is no longer pending, or has its export, is left as it is.
    At most ``SWEEP_BATCH`` versions per call, oldest first.
    """
    if pending_after_s is None:
        pending_after_s = settings.FITNESS_SWEEP_MODEL_PENDING_AFTER_S
    now = timezone.now()
    not_recent = Q(task_queued_at__isnull=True) | Q(task_queued_at__lt=now - timedelta(seconds=pending_after_s))
    export_pending = Q(validation_status=ValidationStatus.VALID, runtime_checksum="", kind=Kind.CLASSIFIER) & ~Q(
        runtime_export__has_key="error"
    )
    stale = not_recent & (Q(validation_status=ValidationStatus.PENDING) | export_pending)
    with transaction.atomic():
        found = list(
            ModelVersion.objects.select_for_update(skip_locked=True)
            .filter(stale)
            .order_by("uploaded_at", "pk")
            .values_list("pk", "validation_status")[:SWEEP_BATCH]
        )
        if not found:
            return []
        for pk, status in found:
            if status == ValidationStatus.PENDING:
                model_version_queue_validation(version_id=pk)
            else:
                model_version_queue_export(version_id=pk)
    logger.warning("sweep: %d model versions with a pending validation or export queued again", len(found))
    return [pk for pk, _ in found]
