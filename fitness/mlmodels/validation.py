"""Validation of a model file before anything is stored.

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
from dataclasses import dataclass, field, replace

import numpy as np
from django.conf import settings

from inference import catalog
from inference.model import ModelFileError

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
    """Check an uploaded ``.keras`` model file: it loads, its metadata is complete and fits the
    registry, its shapes match the metadata, its labels are catalog exercises, it counts a
    synthetic recording. Loads TensorFlow (seconds for the shipped ensemble).

    With ``runtime_data`` (its ``.onnx`` export) that export is checked too, and with ``export``
    the export is made now (most of a minute for the shipped ensemble: not in a request; an
    upload is exported by a worker, :func:`fitness.mlmodels.services.model_version_export`).

    Raises:
        ModelFileError: with the reason the file (or its export) is refused.
    """
    if not data:
        raise ModelFileError("the file is empty")
    max_bytes = settings.FITNESS_MAX_MODEL_BYTES
    if len(data) > max_bytes:
        raise ModelFileError(f"the file is larger than {max_bytes} bytes")
    from inference.model import load_model_bytes
    from inference.runtime import looks_like_onnx

    if looks_like_onnx(data[:4]):
        raise ModelFileError("upload the trained .keras model; its .onnx export is made from it here")
    model = load_model_bytes(data)
    spec = model.spec
    version = spec.version
    if len(version) > VERSION_MAX_LENGTH or not _VERSION_RE.match(version):
        raise ModelFileError(
            f"metadata version {version!r} must be 1-{VERSION_MAX_LENGTH} characters of letters, digits and ._+-"
        )
    _check_exercises_in_catalog(spec.exercises)
    _dry_run_counting(model)
    checksum = hashlib.sha256(data).hexdigest()
    validated = ValidatedModelFile(data=data, checksum=checksum, version=version, metadata=spec.to_dict())
    if runtime_data is None and not export:
        return validated
    checked = _runtime_export(data, checksum, model, runtime_data)
    return replace(
        validated, runtime_data=checked.data, runtime_checksum=checked.checksum, runtime_export=checked.record
    )


def export_model_file(data: bytes, *, checksum: str) -> CheckedExport:
    """Export a registered ``.keras`` (its bytes and SHA-256, hex) to ``.onnx`` and check it.

    Loads TensorFlow and converts the network: most of a minute for the shipped ensemble (a
    worker of the admin queue calls it, never a request). The export's phase probabilities must match
    Keras' within :data:`inference.export.TOLERANCE`, and the export must count the synthetic
    recording.

    Raises:
        ModelFileError: the bytes are not the registered file, the file no longer loads, or it
            cannot be exported (:class:`inference.export.ExportError`, a subclass).
    """
    from inference.model import load_model_bytes

    if hashlib.sha256(data).hexdigest() != checksum:
        raise ModelFileError("the stored .keras does not match its checksum")
    return _runtime_export(data, checksum, load_model_bytes(data), None)


def _check_exercises_in_catalog(exercises: tuple[str, ...]) -> None:
    """Refuse phase labels whose exercise is outside the catalog (its sets could not be hinted,
    grouped in statistics or exported)."""
    unknown = [e for e in exercises if not catalog.is_known(e)]
    if unknown:
        raise ModelFileError(
            f"labels name exercises outside the exercise catalog: {', '.join(unknown)}; "
            f"see {catalog.WHERE_THE_LIST_IS} for the ids"
        )


def _runtime_export(data: bytes, checksum: str, model, runtime_data: bytes | None) -> CheckedExport:
    """The checked ``.onnx`` export of the Keras ``model`` (made now, or ``runtime_data`` checked)."""
    from inference.export import check_export, export_model_bytes
    from inference.model import load_model_bytes
    from inference.runtime import OnnxFormatError, read_onnx_json

    if runtime_data is None:
        runtime_data, record = export_model_bytes(data, keras_model=model)
        exported = load_model_bytes(runtime_data)
    else:
        if len(runtime_data) > settings.FITNESS_MAX_MODEL_BYTES:
            raise ModelFileError(f"the export is larger than {settings.FITNESS_MAX_MODEL_BYTES} bytes")
        try:
            record = read_onnx_json(runtime_data, "inference_export.json")
        except OnnxFormatError as exc:
            raise ModelFileError(f"the export: {exc}") from exc
        if record.get("source_sha256") != checksum:
            raise ModelFileError("the export was not made from this .keras file (source_sha256 differs)")
        exported = load_model_bytes(runtime_data)
        record = {**record, "max_abs_diff_at_registration": check_export(model, exported)}
    _dry_run_counting(exported)
    return CheckedExport(data=runtime_data, checksum=hashlib.sha256(runtime_data).hexdigest(), record=record)


def _dry_run_counting(model) -> None:
    """Count a short synthetic recording with the model's own metadata (scaling, counting)."""
    from inference.io import Recording
    from inference.pipeline import count_with_classifier

    try:
        spec = model.spec
        n = max(3 * spec.window, 10)
        time_s = np.arange(n, dtype=np.float64) / spec.sample_rate_hz
        phase = 2 * np.pi * 0.5 * time_s[:, None] + np.arange(len(spec.channels))[None, :]
        recording = Recording(
            time_s=time_s,
            samples=(0.1 * np.sin(phase)).astype(np.float32),
            channels=spec.channels,
            source_format="csv",
        )
        count_with_classifier(recording, model)
    except Exception as exc:  # any failure here means the file cannot count
        raise ModelFileError(f"the model cannot count a recording with its own metadata: {exc}") from exc
