"""Validation of a model file before anything is stored.

Static checks first, in this process and without TensorFlow: the file's size, its metadata
(:class:`inference.spec.ModelSpec`, with upper bounds on window, chunk, context, sample rate,
channels and labels), its version string, its exercises, and the network's size read from its
``config.json`` (:func:`inference.network_size.check_keras_network`: parameters and largest
tensor). Only then is the network built, in a child process whose address space is capped at
``FITNESS_MODEL_CHECK_MEMORY_MB`` (:func:`inference.model_check.run_model_check`): a file that
exceeds it, crashes the child or outlasts ``FITNESS_MODEL_CHECK_TIMEOUT_S`` is refused with
the reason, and this process's memory does not grow.

A file is accepted when it loads, its metadata is complete, the network's input and
output shapes match the metadata, a dry run on a zero window works
(:func:`inference.model.load_model`), its version string fits the registry, its labels
are phases the counter understands, each of their exercises is an id of the exercise catalog
(:mod:`inference.catalog`, what hints, sets and statistics use), and the whole counting path runs on a short
synthetic recording with the file's own preprocessing and counting parameters.

The serving runtime's ``.onnx`` export is made apart (:func:`export_model_file`, called by a
worker of the admin queue after an upload: converting the shipped ensemble takes most of a
minute), or an export given with the file is checked at once (the shipped model's,
``validate_model_file(..., runtime_data=...)``): either way the export's phase probabilities must
match Keras' within :data:`inference.export.TOLERANCE` on the check inputs, and the export must
count the synthetic recording too. Workers load the export; until a version has one they load
its ``.keras`` with TensorFlow.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.conf import settings

from inference import catalog
from inference.model import ModelFileError
from inference.spec import ModelSpec

from .models import VERSION_MAX_LENGTH

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*$")


@dataclass(frozen=True)
class ValidatedModelFile:
    """A model file that passed :func:`validate_model_file`."""

    data: bytes
    checksum: str
    version: str
    metadata: dict
    #: The ``.onnx`` export workers load, its SHA-256 and its export record (:mod:`inference.export`);
    #: empty unless an export was made or checked with the file (it is made later, by a worker).
    runtime_data: bytes = b""
    runtime_checksum: str = ""
    runtime_export: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedExport:
    """A ``.onnx`` export that passed the check against its ``.keras`` (:func:`export_model_file`)."""

    data: bytes
    checksum: str
    #: The export record: ``source_sha256``, ``tolerance``, ``max_abs_diff``, ... (:mod:`inference.export`).
    record: dict


def validate_model_file(data: bytes, *, runtime_data: bytes | None = None, export: bool = False) -> ValidatedModelFile:
    """Check an uploaded ``.keras`` model file: its metadata is complete, within bounds and fits
    the registry, its labels are catalog exercises, its network is within the size bounds, and
    (in a child process under the memory limit) it loads, its shapes match the metadata and it
    counts a synthetic recording. The child loads TensorFlow (seconds for the shipped ensemble).

    With ``runtime_data`` (its ``.onnx`` export) that export is checked too, and with ``export``
    the export is made now (most of a minute for the shipped ensemble: not in a request; an
    upload is exported by a worker, :func:`fitness.mlmodels.services.model_version_export`).

    Raises:
        ModelFileError: with the reason the file (or its export) is refused, e.g. a metadata
            field out of bounds, a layer too large, or "exceeds the memory limit of N MiB".
    """
    if not data:
        raise ModelFileError("the file is empty")
    max_bytes = settings.FITNESS_MAX_MODEL_BYTES
    if len(data) > max_bytes:
        raise ModelFileError(f"the file is larger than {max_bytes} bytes")
    from inference.runtime import looks_like_onnx

    if looks_like_onnx(data[:4]):
        raise ModelFileError("upload the trained .keras model; its .onnx export is made from it here")
    checksum = hashlib.sha256(data).hexdigest()
    if runtime_data is not None:
        _check_export_record(runtime_data, checksum)
    with tempfile.TemporaryDirectory(prefix="model-check-") as tmp:
        path = Path(tmp) / "model.keras"
        path.write_bytes(data)
        spec = static_checks(path)
        runtime_path = export_path = None
        if runtime_data is not None:
            runtime_path = Path(tmp) / "given.onnx"
            runtime_path.write_bytes(runtime_data)
        elif export:
            export_path = Path(tmp) / "export.onnx"
        checked = _check_in_child(path, runtime_path=runtime_path, export_path=export_path)
        if export_path is not None:
            runtime_data = export_path.read_bytes()
    validated = ValidatedModelFile(data=data, checksum=checksum, version=spec.version, metadata=spec.to_dict())
    if runtime_data is None:
        return validated
    return replace(
        validated,
        runtime_data=runtime_data,
        runtime_checksum=hashlib.sha256(runtime_data).hexdigest(),
        runtime_export=checked.export_record,
    )


def static_checks(path: Path) -> ModelSpec:
    """The checks that build nothing: metadata (with its bounds), version string, exercises,
    and the network's size from its ``config.json``. Returns the file's spec.

    Raises:
        ModelFileError: the first problem found, naming the field or layer.
    """
    from inference.model import read_spec
    from inference.network_size import NetworkSizeError, check_keras_network

    spec = read_spec(path)
    version = spec.version
    if len(version) > VERSION_MAX_LENGTH or not _VERSION_RE.match(version):
        raise ModelFileError(
            f"metadata version {version!r} must be 1-{VERSION_MAX_LENGTH} characters of letters, digits and ._+-"
        )
    _check_exercises_in_catalog(spec.exercises)
    try:
        check_keras_network(path, spec)
    except NetworkSizeError as exc:
        raise ModelFileError(str(exc)) from exc
    return spec


def export_model_file(data: bytes, *, checksum: str) -> CheckedExport:
    """Export a registered ``.keras`` (its bytes and SHA-256, hex) to ``.onnx`` and check it.

    Runs in a child process under the memory limit and loads TensorFlow there: most of a minute
    for the shipped ensemble (a worker of the admin queue calls it, never a request). The export's
    phase probabilities must match Keras' within :data:`inference.export.TOLERANCE`, and the
    export must count the synthetic recording.

    Raises:
        ModelFileError: the bytes are not the registered file, the file no longer passes the
            checks, or it cannot be exported (:class:`inference.export.ExportError`'s reason).
    """
    if hashlib.sha256(data).hexdigest() != checksum:
        raise ModelFileError("the stored .keras does not match its checksum")
    with tempfile.TemporaryDirectory(prefix="model-export-") as tmp:
        path, export_path = Path(tmp) / "model.keras", Path(tmp) / "export.onnx"
        path.write_bytes(data)
        static_checks(path)
        checked = _check_in_child(path, export_path=export_path)
        runtime_data = export_path.read_bytes()
    return CheckedExport(
        data=runtime_data, checksum=hashlib.sha256(runtime_data).hexdigest(), record=checked.export_record
    )


def _check_in_child(path: Path, *, runtime_path: Path | None = None, export_path: Path | None = None):
    from inference.model_check import run_model_check

    return run_model_check(
        path,
        memory_limit_mb=settings.FITNESS_MODEL_CHECK_MEMORY_MB,
        timeout_s=settings.FITNESS_MODEL_CHECK_TIMEOUT_S,
        runtime_path=runtime_path,
        export_path=export_path,
    )


def _check_export_record(runtime_data: bytes, checksum: str) -> None:
    """Refuse a given export that is too large or was not made from this ``.keras`` (read from its
    ``metadata_props``, without a runtime)."""
    from inference.runtime import OnnxFormatError, read_onnx_json

    if len(runtime_data) > settings.FITNESS_MAX_MODEL_BYTES:
        raise ModelFileError(f"the export is larger than {settings.FITNESS_MAX_MODEL_BYTES} bytes")
    try:
        record = read_onnx_json(runtime_data, "inference_export.json")
    except OnnxFormatError as exc:
        raise ModelFileError(f"the export: {exc}") from exc
    if record.get("source_sha256") != checksum:
        raise ModelFileError("the export was not made from this .keras file (source_sha256 differs)")


def _check_exercises_in_catalog(exercises: tuple[str, ...]) -> None:
    """Refuse phase labels whose exercise is outside the catalog (its sets could not be hinted,
    grouped in statistics or exported)."""
    unknown = [e for e in exercises if not catalog.is_known(e)]
    if unknown:
        raise ModelFileError(
            f"labels name exercises outside the exercise catalog: {', '.join(unknown)}; "
            f"see {catalog.WHERE_THE_LIST_IS} for the ids"
        )
