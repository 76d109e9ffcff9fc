"""Worker side: which model counts, loaded once per process per file.

The production version is resolved per task (one query), and its file is loaded with
:func:`inference.model.load_model_cached`, keyed by path and modification time. Each
version has its own content-addressed file, so a newly activated version is picked up
by the next task without a restart, and an unchanged one is never loaded twice. Files in
object storage are loaded from a local copy named by checksum (:mod:`.files`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from inference.model import ModelFileError

from .models import ModelVersion, Stage

if TYPE_CHECKING:
    from inference.model import PhaseModel

logger = logging.getLogger(__name__)


def load_version_model(version: ModelVersion) -> PhaseModel:
    """The loaded model of a registered version (cached per process).

    Loads the version's ``.onnx`` export with the serving runtime (ONNX Runtime); a version
    registered before exports existed has none, and its ``.keras`` is loaded with TensorFlow.

    Raises:
        ModelFileError: the stored file is missing, unreadable or not the registered one.
    """
    from inference.model import load_model_cached

    from .files import local_model_path

    stored, checksum = version.file, version.checksum
    if version.runtime_file and version.runtime_checksum:
        stored, checksum = version.runtime_file, version.runtime_checksum
    else:
        logger.warning("model version %s has no export: loading its .keras with TensorFlow", version.version)
    try:
        model = load_model_cached(local_model_path(stored, checksum=checksum))
    except FileNotFoundError as exc:
        raise ModelFileError(f"the file of model version {version.version} is missing") from exc
    if model.checksum != checksum:
        raise ModelFileError(f"the stored file of model version {version.version} does not match its checksum")
    return model


def production_version() -> ModelVersion | None:
    """The ``production`` row (one indexed query), or None while the registry is empty."""
    return (
        ModelVersion.objects.filter(stage=Stage.PRODUCTION)
        .only("pk", "version", "file", "checksum", "runtime_file", "runtime_checksum")
        .first()
    )


def production_model() -> PhaseModel | None:
    """The production version's model, or None while the registry is empty."""
    version = production_version()
    return None if version is None else load_version_model(version)
