"""Worker side: which models count, loaded once per process per file.

Two kinds of version have a production version each: the phase classifier
(:func:`production_model`) and the learned repetition counter (:func:`production_counter`).

The production version is resolved per task (one query), and its file is loaded with
:func:`inference.model.load_model_cached`, keyed by path and modification time. Each
version has its own content-addressed file, so a newly activated version is picked up
by the next task without a restart, and an unchanged one is never loaded twice. Files in
object storage are loaded from a local copy named by checksum (:mod:`.files`).
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from inference.model import ModelFileError

from .models import Kind, ModelVersion, Stage

if TYPE_CHECKING:
    from inference.density import DensityCounter
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


def production_version(kind: str = Kind.CLASSIFIER) -> ModelVersion | None:
    """The ``production`` row of a kind (one indexed query), or None while there is none."""
    return (
        ModelVersion.objects.filter(stage=Stage.PRODUCTION, kind=kind)
        .only("pk", "version", "kind", "file", "checksum", "runtime_file", "runtime_checksum")
        .first()
    )


def production_model() -> PhaseModel | None:
    """The production classifier version's model, or None while the registry has none."""
    version = production_version(Kind.CLASSIFIER)
    return None if version is None else load_version_model(version)


@lru_cache(maxsize=4)
def _load_counter(path: str, checksum: str) -> DensityCounter:
    """One :class:`~inference.density.DensityCounter` per file and checksum per process."""
    from inference.density import DensityCounter

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != checksum:
        raise ModelFileError(f"the stored counter file {path} does not match its checksum")
    return DensityCounter(path)


def load_version_counter(version: ModelVersion) -> DensityCounter:
    """The loaded learned counter of a ``counter`` version (cached per process per checksum).

    Raises:
        ModelFileError: not a counter version, or its stored file is missing, unreadable or
            not the registered one.
    """
    from .files import local_model_path

    if version.kind != Kind.COUNTER:
        raise ModelFileError(f"model version {version.version} is a {version.kind}, not a counter")
    try:
        path = local_model_path(version.file, checksum=version.checksum)
        return _load_counter(str(path), version.checksum)
    except FileNotFoundError as exc:
        raise ModelFileError(f"the file of counter version {version.version} is missing") from exc
    except ModelFileError:
        raise
    except Exception as exc:  # OSError, a spec without version, ONNX Runtime's own errors (Fail, ...)
        raise ModelFileError(f"counter version {version.version} cannot be loaded: {exc}") from exc


def production_counter() -> DensityCounter | None:
    """The production counter version's learned counter, or None while the registry has none
    (the caller decides the default, e.g. :func:`inference.density.default_counter`).

    The version is looked up per call (one indexed query), its file loaded once per process per
    checksum: an activation counts from the next task on, without a restart.

    Raises:
        ModelFileError: the production counter's stored file is missing or changed.
    """
    version = production_version(Kind.COUNTER)
    return None if version is None else load_version_counter(version)
