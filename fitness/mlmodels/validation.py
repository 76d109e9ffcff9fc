"""Validation of a model file: cheap checks in the request, the full check on the admin queue.

Static checks first, without TensorFlow and without building anything
(:func:`precheck_model_file`, what an upload runs before it answers): the file's size, that it is
a ``.keras`` zip and not an ``.onnx``, its metadata (:class:`inference.spec.ModelSpec`, with upper
bounds on window, chunk, context, sample rate, channels and labels), its version string, its
exercises, and the network's size read from its ``config.json``
(:func:`inference.network_size.check_keras_network`: parameters and largest tensor).

The full check builds the network, in a child process whose address space is capped at
``FITNESS_MODEL_CHECK_MEMORY_MB`` (:func:`inference.model_check.run_model_check`): a file that
exceeds it, crashes the child or outlasts ``FITNESS_MODEL_CHECK_TIMEOUT_S`` is refused with
the reason, and the caller's memory does not grow. For an upload a worker of the admin queue runs
it (:func:`check_registered_file`, called by
:func:`fitness.mlmodels.services.model_version_validate`), so that no web process starts the
child; :func:`validate_model_file` runs both at once (the shipped model's registration, a command).

A file is valid when it loads, its metadata is complete, the network's input and
output shapes match the metadata, a dry run on a zero window works
(:func:`inference.model.load_model`), its version string fits the registry, its labels
are phases the counter understands, each of their exercises is an id of the exercise catalog
(:mod:`inference.catalog`, what hints, sets and statistics use), and the whole counting path runs on a short
synthetic recording with the file's own preprocessing and counting parameters.

The serving runtime's ``.onnx`` export is made in the same child (:func:`check_registered_file`,
:func:`export_model_file`), or an export given with the file is checked at once (the shipped
model's, ``validate_model_file(..., runtime_data=...)``): either way the export's phase
probabilities must match Keras' within :data:`inference.export.TOLERANCE` on the check inputs,
and the export must count the synthetic recording too. Workers load the export; until a version
has one they load its ``.keras`` with TensorFlow.
"""

from __future__ import annotations

import hashlib
import math
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.conf import settings

from inference import catalog
from inference.model import ModelFileError
from inference.model_check import ExportFailedError
from inference.spec import ModelSpec

from .models import VERSION_MAX_LENGTH, Kind

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
    #: Whether the full check ran (:func:`validate_model_file`); False after :func:`precheck_model_file`
    #: only (a worker runs the rest: the version starts ``pending``).
    checked: bool = False
    #: :class:`~fitness.mlmodels.models.Kind`: ``classifier`` (a ``.keras``) or ``counter`` (an ``.onnx``).
    kind: str = Kind.CLASSIFIER


@dataclass(frozen=True)
class CheckedExport:
    """A ``.onnx`` export that passed the check against its ``.keras`` (:func:`export_model_file`)."""

    data: bytes
    checksum: str
    #: The export record: ``source_sha256``, ``tolerance``, ``max_abs_diff``, ... (:mod:`inference.export`).
    record: dict


def precheck_model_file(data: bytes) -> ValidatedModelFile:
    """The checks of an uploaded ``.keras`` that need no network runtime (what a request runs):
    not empty, within ``FITNESS_MAX_MODEL_BYTES``, a ``.keras`` zip and not an ``.onnx``, and
    :func:`static_checks` (metadata within bounds, version string, catalog exercises, network
    size from ``config.json``). Imports neither TensorFlow nor ONNX Runtime; milliseconds.

    An ``.onnx`` carrying a counter spec is a learned counter: :func:`precheck_counter_file`
    (``kind="counter"``); any other ``.onnx`` is refused (a classifier's export is made here).

    Returns the file with ``checked=False``: the full check is :func:`check_registered_file`.

    Raises:
        ModelFileError: the first problem found, naming the field or layer.
    """
    with tempfile.TemporaryDirectory(prefix="model-precheck-") as tmp:
        return _precheck_at(Path(tmp) / "model.keras", data)


def _precheck_at(path: Path, data: bytes) -> ValidatedModelFile:
    """:func:`precheck_model_file` with ``data`` written to ``path`` (a temporary folder's)."""
    if not data:
        raise ModelFileError("the file is empty")
    max_bytes = settings.FITNESS_MAX_MODEL_BYTES
    if len(data) > max_bytes:
        raise ModelFileError(f"the file is larger than {max_bytes} bytes")
    from inference.runtime import looks_like_onnx

    if looks_like_onnx(data[:4]):
        if _is_counter_file(data):
            return precheck_counter_file(data)
        raise ModelFileError("upload the trained .keras model; its .onnx export is made from it here")
    path.write_bytes(data)
    spec = static_checks(path)
    return ValidatedModelFile(
        data=data, checksum=hashlib.sha256(data).hexdigest(), version=spec.version, metadata=spec.to_dict()
    )


def validate_model_file(data: bytes, *, runtime_data: bytes | None = None, export: bool = False) -> ValidatedModelFile:
    """:func:`precheck_model_file`, then the full check at once: (in a child process under the
    memory limit) the file loads, its shapes match the metadata and it counts a synthetic
    recording. The child loads TensorFlow (seconds for the shipped ensemble): a command or a
    worker calls this, never a request. Returns the file with ``checked=True``.

    With ``runtime_data`` (its ``.onnx`` export) that export is checked too, and with ``export``
    the export is made now (most of a minute for the shipped ensemble).

    Raises:
        ModelFileError: with the reason the file (or its export) is refused, e.g. a metadata
            field out of bounds, a layer too large, or "exceeds the memory limit of N MiB".
    """
    with tempfile.TemporaryDirectory(prefix="model-check-") as tmp:
        path = Path(tmp) / "model.keras"
        validated = replace(_precheck_at(path, data), checked=True)
        if validated.kind == Kind.COUNTER:  # no export: the file is what workers load
            return validate_counter_file(data)
        if runtime_data is not None:
            _check_export_record(runtime_data, validated.checksum)
        runtime_path = export_path = None
        if runtime_data is not None:
            runtime_path = Path(tmp) / "given.onnx"
            runtime_path.write_bytes(runtime_data)
        elif export:
            export_path = Path(tmp) / "export.onnx"
        checked = _check_in_child(path, runtime_path=runtime_path, export_path=export_path)
        if export_path is not None:
            runtime_data = export_path.read_bytes()
    if runtime_data is None:
        return validated
    return replace(
        validated,
        runtime_data=runtime_data,
        runtime_checksum=hashlib.sha256(runtime_data).hexdigest(),
        runtime_export=checked.export_record,
    )


@dataclass(frozen=True)
class CheckedRegisteredFile:
    """What :func:`check_registered_file` found: the file is valid; its export, or why it failed."""

    export: CheckedExport | None
    export_error: str = ""


def check_registered_file(data: bytes, *, checksum: str) -> CheckedRegisteredFile:
    """The full check of a registered ``.keras`` (its bytes and SHA-256, hex), and its export,
    in one child process under the memory limit (a worker of the admin queue calls it).

    Returns the checked export, or ``export_error`` when the file passed its checks and only its
    export failed (the version is usable: workers load the ``.keras``).

    Raises:
        ModelFileError: the bytes are not the registered file, or the file is invalid (the reason).
    """
    try:
        return CheckedRegisteredFile(export=export_model_file(data, checksum=checksum))
    except ExportFailedError as exc:
        return CheckedRegisteredFile(export=None, export_error=str(exc) or "the export failed")


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


#: What a counter spec's numbers may be (inclusive; grid in Hz, durations in s, rate in
#: repetitions per second): a spec outside them would cut sets at absurd scales or blow up the grid.
COUNTER_BOUNDS: dict[str, tuple[float, float]] = {
    "grid_hz": (5.0, 50.0),
    "highpass_s": (0.1, 60.0),
    "min_rate": (0.001, 10.0),
    "smooth_s": (0.1, 60.0),
    "set_gap_s": (0.1, 600.0),
    "min_set_reps": (1, 100),
}


def _is_counter_file(data: bytes) -> bool:
    """Whether ``data`` is an ONNX file with a counter spec entry (read without a runtime)."""
    from inference.density import SPEC_KEY
    from inference.runtime import OnnxFormatError, read_onnx_metadata

    try:
        return SPEC_KEY in read_onnx_metadata(data)
    except OnnxFormatError:
        return False


def precheck_counter_file(data: bytes) -> ValidatedModelFile:
    """The checks of an uploaded learned counter (``.onnx``) that need no runtime: not empty, within
    ``FITNESS_MAX_MODEL_BYTES``, and its ``inference_counter.json`` spec read with protobuf alone
    (:func:`check_counter_spec`). Returns the file with ``kind="counter"`` and ``checked=False``.

    Raises:
        ModelFileError: the first problem found, naming the spec field.
    """
    if not data:
        raise ModelFileError("the file is empty")
    if len(data) > settings.FITNESS_MAX_MODEL_BYTES:
        raise ModelFileError(f"the file is larger than {settings.FITNESS_MAX_MODEL_BYTES} bytes")
    from inference.density import SPEC_KEY
    from inference.runtime import OnnxFormatError, read_onnx_json

    try:
        raw = read_onnx_json(data, SPEC_KEY)
    except OnnxFormatError as exc:
        raise ModelFileError(f"the counter file: {exc}") from exc
    spec = check_counter_spec(raw)
    return ValidatedModelFile(
        data=data,
        checksum=hashlib.sha256(data).hexdigest(),
        version=spec["version"],
        metadata=spec,
        kind=Kind.COUNTER,
    )


def check_counter_spec(raw: dict) -> dict:
    """A counter spec (``inference_counter.json``) checked: ``version`` a registry version string,
    each number of :data:`COUNTER_BOUNDS` finite and within its bounds (``min_set_reps`` an
    integer), ``routing``, ``training`` and ``evaluation`` JSON objects. Returns the spec as
    :class:`inference.density.CounterSpec` reads it (defaults filled in, unknown keys dropped).

    Raises:
        ModelFileError: naming the field and the problem.
    """
    from inference.density import CounterSpec

    version = raw.get("version")
    if not isinstance(version, str) or not version:
        raise ModelFileError("the counter spec (inference_counter.json) has no version string")
    if len(version) > VERSION_MAX_LENGTH or not _VERSION_RE.match(version):
        raise ModelFileError(
            f"counter spec version {version!r} must be 1-{VERSION_MAX_LENGTH} characters of letters, digits and ._+-"
        )
    for name, (lo, hi) in COUNTER_BOUNDS.items():
        if name not in raw:
            continue
        value = raw[name]
        integer = name == "min_set_reps"
        is_number = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
        if not is_number or not math.isfinite(value):
            what = "an integer" if integer else "a number"
            raise ModelFileError(f"counter spec {name} must be {what}; got {value!r}")
        if not lo <= value <= hi:
            raise ModelFileError(f"counter spec {name} must be within {lo:g}-{hi:g}; got {value!r}")
    for name in ("routing", "training", "evaluation"):
        if not isinstance(raw.get(name, {}), dict):
            raise ModelFileError(f"counter spec {name} must be a JSON object")
    return CounterSpec.from_dict(raw).to_dict()


def validate_counter_file(data: bytes) -> ValidatedModelFile:
    """:func:`precheck_counter_file`, then the full check at once (:func:`check_registered_counter`,
    in the memory-capped child): what registering the shipped counter runs. Returns it ``checked``.

    Raises:
        ModelFileError: the reason the counter is refused.
    """
    validated = precheck_counter_file(data)
    check_registered_counter(data, checksum=validated.checksum)
    return replace(validated, checked=True)


def check_registered_counter(data: bytes, *, checksum: str) -> None:
    """The full check of a registered counter (its bytes and SHA-256, hex), in a child process under
    the memory limit: it loads in ONNX Runtime, its spec is as the upload's precheck requires, and it
    counts a synthetic recording to a finite, non-negative count (:func:`inference.model_check.check_counter`).

    Raises:
        ModelFileError: the bytes are not the registered file, or the counter is invalid (the reason).
    """
    if hashlib.sha256(data).hexdigest() != checksum:
        raise ModelFileError("the stored .onnx does not match its checksum")
    precheck_counter_file(data)
    with tempfile.TemporaryDirectory(prefix="counter-check-") as tmp:
        path = Path(tmp) / "counter.onnx"  # the suffix tells the child it is a counter
        path.write_bytes(data)
        _check_in_child(path)


def _check_exercises_in_catalog(exercises: tuple[str, ...]) -> None:
    """Refuse phase labels whose exercise is outside the catalog (its sets could not be hinted,
    grouped in statistics or exported)."""
    unknown = [e for e in exercises if not catalog.is_known(e)]
    if unknown:
        raise ModelFileError(
            f"labels name exercises outside the exercise catalog: {', '.join(unknown)}; "
            f"see {catalog.WHERE_THE_LIST_IS} for the ids"
        )
