"""Exporting a registered version to the serving runtime (``.onnx``): queued after an upload, run
by a worker of the admin queue (converting the shipped ensemble takes most of a minute, too long
for a request).

Until a version's export is stored, workers count with its ``.keras`` (TensorFlow,
:func:`fitness.mlmodels.runtime.load_version_model`). The export state shows as
``ModelVersion.runtime_status``: ``pending``, ``ready``, or ``failed`` with the reason in
``runtime_export["error"]``.
"""

from __future__ import annotations

import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from fitness.core.storage import StorageUnavailable, is_transient_storage_error
from inference.model import ModelFileError

from ..files import local_model_path
from ..models import Kind, ModelVersion
from ..validation import CheckedExport, export_model_file
from .common import MAX_ERROR_CHARS, jsonable

logger = logging.getLogger(__name__)


def model_version_queue_export(*, version_id: int) -> None:
    """Queue the export of a version on the admin queue once the current transaction commits.

    A version that cannot be queued (the broker is down) gets ``failed`` with the reason; staff
    can queue it again (the admin's "Export" action), which clears an earlier failure (``pending``).
    ``task_queued_at`` is stamped: the sweep queues again an export that stays pending too long.
    """
    ModelVersion.objects.filter(pk=version_id, runtime_checksum="").update(
        runtime_export={}, task_queued_at=timezone.now()
    )
    transaction.on_commit(lambda: _enqueue_export(version_id))


def _enqueue_export(version_id: int) -> None:
    from ..tasks import export_model_version

    try:
        export_model_version.delay(version_id)
    except Exception as exc:  # noqa: BLE001 - the broker is down: say so, staff can queue it again
        logger.warning("export of model version %s could not be queued: %s", version_id, exc)
        _export_failed(version_id, "the export could not be queued (task broker unavailable); queue it again")


def model_version_export(*, version_id: int) -> ModelVersion | None:
    """Export a version's stored ``.keras`` to ``.onnx``, check it and store it (worker side).

    Reads the ``.keras`` through the storage API (a local copy from object storage), exports it
    and checks it (:func:`~fitness.mlmodels.validation.export_model_file`: within
    :data:`inference.export.TOLERANCE` of Keras, and it counts a synthetic recording), then
    stores ``runtime_file``, ``runtime_checksum`` and ``runtime_export`` in one update. A version
    that already has an export is left as it is; a failure is stored as
    ``runtime_export = {"error": reason}`` and logged. Returns the version (None: it is gone).

    Raises:
        StorageUnavailable: the object store could not be reached (the task retries).
    """
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("model version %s no longer exists; nothing to export", version_id)
        return None
    if (version.runtime_file and version.runtime_checksum) or version.kind == Kind.COUNTER:
        # A counter's file is itself the .onnx workers load.
        logger.info("model version %s has its export or is a counter; nothing to do", version.version)
        return version
    try:
        path = local_model_path(version.file, checksum=version.checksum)
        checked = export_model_file(path.read_bytes(), checksum=version.checksum)
        return _store_export(version_id, checked)
    except Exception as exc:
        if isinstance(exc, StorageUnavailable) or is_transient_storage_error(exc):
            raise StorageUnavailable(f"model version {version.version}: the .keras cannot be read: {exc}") from exc
        if isinstance(exc, FileNotFoundError):
            return _export_failed(version_id, "the stored .keras is missing")
        if isinstance(exc, (ModelFileError, OSError)):
            logger.info("export of model version %s failed: %s", version.version, exc)
            return _export_failed(version_id, str(exc))
        logger.exception("model version %s: unexpected error while exporting", version.version)
        return _export_failed(version_id, f"internal error while exporting ({type(exc).__name__}: {exc})")


def _store_export(version_id: int, checked: CheckedExport) -> ModelVersion:
    """Save the checked export's file and fields together (or nothing, when another run was first)."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version_id)
        if version.runtime_file and version.runtime_checksum:
            return version  # a concurrent run stored it first
        version.runtime_checksum = checked.checksum
        version.runtime_export = jsonable(checked.record)
        try:
            version.runtime_file.save(f"{checked.checksum}.onnx", ContentFile(checked.data), save=False)
            version.save(update_fields=["runtime_file", "runtime_checksum", "runtime_export"])
        except BaseException:
            if version.runtime_file.name:
                version.runtime_file.delete(save=False)
            raise
    logger.info(
        "model version %s exported (max abs difference %s)", version.version, checked.record.get("max_abs_diff")
    )
    return version


def _export_failed(version_id: int, error: str) -> ModelVersion | None:
    ModelVersion.objects.filter(pk=version_id, runtime_checksum="").update(
        runtime_export={"error": (error or "unknown error")[:MAX_ERROR_CHARS]}
    )
    return ModelVersion.objects.filter(pk=version_id).first()
