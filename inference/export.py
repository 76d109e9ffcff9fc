"""Exporting a trained ``.keras`` model to the serving runtime's ``.onnx``, checked against Keras.

The Keras network (for the shipped model: ten sequence networks and their average, one
functional graph) is converted by Keras' own ``Model.export(format="onnx")`` (tf2onnx
underneath) into one ONNX graph with open batch and time axes. The spec of the ``.keras``
is copied into the file's ``metadata_props`` (``inference_metadata.json``), with a record of
the export (``inference_export.json``): the source file's SHA-256, the converter versions,
the tolerance and the largest difference measured on the check inputs.

The export is refused (:class:`ExportError`) unless ONNX Runtime's phase probabilities match
Keras' within :data:`TOLERANCE` (max absolute difference) on every check input: a fixed
pseudo-random scaled session covering several chunks, a zero window, and whatever real
sessions the caller adds (``python -m inference.lab export`` adds every Exermote recording).

This module imports TensorFlow, Keras, tf2onnx and onnx inside its functions: it is what
``python -m inference.lab export`` and the registry's upload check call, never the
serving path.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from inference.model import ModelFileError, PhaseModel, file_checksum, load_model, read_metadata
from inference.runtime import EXPORT_KEY, METADATA_KEY, OnnxNetwork
from inference.spec import ModelSpec

#: Largest absolute difference between Keras' and ONNX Runtime's phase probabilities that an
#: export may have on any sample of any check input (probabilities lie in [0, 1]).
TOLERANCE = 1e-4
#: ONNX opset of the export (tf2onnx 1.17 supports up to 18; ONNX Runtime 1.32 runs it).
OPSET = 17


class ExportError(ModelFileError):
    """A model that cannot be exported, or whose export disagrees with Keras beyond the tolerance."""


def check_inputs(spec: ModelSpec, *, seed: int = 0) -> list[np.ndarray]:
    """Scaled inputs an export is checked on, each float32 (m, n_input_channels).

    A pseudo-random session spanning three chunks (sequence model) or five windows (window
    model) and one zero window: every chunk position and both edges are exercised.
    """
    c = len(spec.input_channels)
    m = 3 * spec.chunk + spec.context if spec.is_sequence else 5 * spec.window
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((m, c)).astype(np.float32), np.zeros((spec.window, c), np.float32)]


def max_difference(reference: PhaseModel, candidate: PhaseModel, inputs: Iterable[np.ndarray]) -> float:
    """Largest |reference - candidate| over the phase probabilities of every input (scaled, (m, c))."""
    worst = 0.0
    for x in inputs:
        a, b = reference.phase_probabilities(x), candidate.phase_probabilities(x)
        if a.shape != b.shape:
            raise ExportError(f"the export gives probabilities of shape {b.shape}, Keras {a.shape}")
        if not np.isfinite(b).all():
            raise ExportError("the export gives probabilities that are not finite")
        worst = max(worst, float(np.abs(a - b).max(initial=0.0)))
    return worst


def check_export(
    keras_model: PhaseModel,
    onnx_model: PhaseModel,
    *,
    tolerance: float = TOLERANCE,
    extra_inputs: Iterable[np.ndarray] = (),
) -> float:
    """Check an export against its Keras model; returns the largest difference measured.

    Raises:
        ExportError: the specs differ, or a probability differs by more than ``tolerance``.
    """
    if keras_model.spec != onnx_model.spec:
        raise ExportError("the export's metadata differs from the Keras model's")
    inputs = [*check_inputs(keras_model.spec), *extra_inputs]
    worst = max_difference(keras_model, onnx_model, inputs)
    if not worst <= tolerance:
        raise ExportError(
            f"the export's phase probabilities differ from Keras' by up to {worst:.2e}; at most {tolerance:g}"
        )
    return worst


def _convert(network, spec: ModelSpec, path: Path, opset: int) -> None:
    """Write the Keras network as ONNX to ``path`` (no metadata yet)."""
    import tensorflow as tf

    time = None if spec.is_sequence else spec.window
    signature = [tf.TensorSpec((None, time, len(spec.input_channels)), tf.float32, name="x")]
    try:
        network.export(str(path), format="onnx", verbose=False, input_signature=signature, opset_version=opset)
    except Exception as exc:  # tf2onnx raises many types for an unsupported graph
        raise ExportError(f"the network cannot be exported to ONNX: {exc}") from exc


def converter_versions() -> dict:
    """Versions of Keras, TensorFlow, tf2onnx, onnx and ONNX Runtime (an export's record)."""
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def export_model(
    keras_path: str | Path,
    out_path: str | Path,
    *,
    tolerance: float = TOLERANCE,
    extra_inputs: Iterable[np.ndarray] = (),
    opset: int = OPSET,
    keras_model: PhaseModel | None = None,
) -> dict:
    """Export a ``.keras`` model file to ``out_path`` (``.onnx``) and check it.

    Args:
        keras_path: a model file :func:`inference.model.load_model` accepts (Keras).
        out_path: where the ``.onnx`` goes (written only once the check passed).
        tolerance: largest absolute difference of any phase probability (:data:`TOLERANCE`).
        extra_inputs: more scaled sessions, float32 (m, n_input_channels), to check on.
        opset: ONNX opset.
        keras_model: ``keras_path`` already loaded (saves loading it again).

    Returns:
        The export record stored in the file (``inference_export.json``): ``source_sha256``,
        ``tolerance``, ``max_abs_diff``, ``check_inputs``, ``opset``, ``versions``.

    Raises:
        ModelFileError: the ``.keras`` cannot be loaded.
        ExportError: it cannot be converted, or the export disagrees beyond the tolerance.
    """
    import onnx

    keras_path, out_path = Path(keras_path), Path(out_path)
    keras_model = keras_model or load_model(keras_path)
    extra = list(extra_inputs)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        _convert(keras_model.network, keras_model.spec, raw, opset)
        try:
            onnx_model = replace(keras_model, network=OnnxNetwork(raw), checksum="", _compiled=None)
        except Exception as exc:  # the runtime refuses what the converter wrote
            raise ExportError(f"ONNX Runtime cannot load the export: {exc}") from exc
        worst = check_export(keras_model, onnx_model, tolerance=tolerance, extra_inputs=extra)
        record = {
            "source_sha256": file_checksum(keras_path),
            "tolerance": tolerance,
            "max_abs_diff": worst,
            "check_inputs": 2 + len(extra),
            "opset": opset,
            "versions": converter_versions(),
        }
        entries = {METADATA_KEY: read_metadata(keras_path), EXPORT_KEY: record}
        save_with_metadata(onnx.load(str(raw)), out_path, entries, producer="inference.export")
    return record


def save_with_metadata(proto, out_path: Path, entries: dict[str, dict], *, producer: str) -> None:
    """Write ONNX ``proto`` to ``out_path`` with ``metadata_props`` replaced by ``entries`` (JSON).

    Written under a temporary name and renamed: never a half-written file under the final name.
    """
    import onnx

    del proto.metadata_props[:]
    for key, value in entries.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value, sort_keys=True)
    proto.producer_name = producer
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".part")
    onnx.save(proto, str(partial))
    partial.replace(out_path)


def export_model_bytes(
    data: bytes, *, tolerance: float = TOLERANCE, keras_model: PhaseModel | None = None
) -> tuple[bytes, dict]:
    """Export an uploaded ``.keras`` given as bytes; returns ``(onnx_bytes, record)``.

    Raises:
        ModelFileError, ExportError: as :func:`export_model`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "model.keras", Path(tmp) / "model.onnx"
        source.write_bytes(data)
        record = export_model(source, out, tolerance=tolerance, keras_model=keras_model)
        return out.read_bytes(), record
