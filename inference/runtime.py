"""The serving runtime: an exported ``.onnx`` model run by ONNX Runtime, without TensorFlow.

A trained Keras model (``.keras``) is exported once (:mod:`inference.export`, ``python -m
inference.lab export``, or the registry at upload) into one ONNX graph: the ten networks of
the ensemble and their average, so that a batch of chunks is one ``InferenceSession.run``.
The exported file carries the same :class:`~inference.spec.ModelSpec` as the ``.keras``
(ONNX ``metadata_props`` entry ``inference_metadata.json``) and a record of its export
(``inference_export.json``: the source file's SHA-256, the tolerance it was checked to).

``onnxruntime`` is imported when a model is loaded, never at import time: the peak counter,
a web process reading a spec and the CLI's generic path never load it. The metadata is read
with protobuf alone (:func:`read_onnx_metadata`), without creating a session.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

METADATA_KEY = "inference_metadata.json"
EXPORT_KEY = "inference_export.json"
#: Largest exported file read (bytes); the shipped one is about 1 MB.
MAX_ONNX_BYTES = 256 << 20
#: Threads ONNX Runtime uses inside one run (``INFERENCE_THREADS``; 0: one per core, its default).
#: One per worker process is the default: a host runs one prefork child per core.
THREADS_ENV = "INFERENCE_THREADS"


class OnnxFormatError(ValueError):
    """Bytes that are not an ONNX model with readable ``metadata_props``."""


@lru_cache(maxsize=1)
def _metadata_message_class():
    """A protobuf message with ONNX ``ModelProto``'s field 14 (``metadata_props``) alone.

    Parsing a whole ``.onnx`` with it keeps every other field as unknown bytes, so the spec
    is read without the ``onnx`` package or a runtime session. Field numbers from
    ``onnx/onnx.proto`` (``ModelProto.metadata_props = 14``; ``StringStringEntryProto``
    ``key = 1``, ``value = 2``).
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="inference_onnx_metadata.proto", package="inference_onnx")
    field = descriptor_pb2.FieldDescriptorProto
    entry = fdp.message_type.add(name="StringStringEntryProto")
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    model = fdp.message_type.add(name="ModelProto")
    model.field.add(
        name="metadata_props",
        number=14,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_REPEATED,
        type_name=".inference_onnx.StringStringEntryProto",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference_onnx.ModelProto"))


def read_onnx_metadata(source: str | Path | bytes) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (path or bytes), key -> value.

    Raises:
        OnnxFormatError: larger than :data:`MAX_ONNX_BYTES`, or not a protobuf message.
        OSError: the path cannot be read.
    """
    if isinstance(source, bytes):
        data = source
    else:
        size = Path(source).stat().st_size
        if size > MAX_ONNX_BYTES:
            raise OnnxFormatError(f"the model file is {size} bytes; at most {MAX_ONNX_BYTES}")
        data = Path(source).read_bytes()
    if len(data) > MAX_ONNX_BYTES:
        raise OnnxFormatError(f"the model file is {len(data)} bytes; at most {MAX_ONNX_BYTES}")
    from google.protobuf.message import DecodeError

    message = _metadata_message_class()()
    try:
        message.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OnnxFormatError(f"not an ONNX model: {exc}") from exc
    return {entry.key: entry.value for entry in message.metadata_props}


def read_onnx_json(source: str | Path | bytes, key: str = METADATA_KEY) -> dict:
    """One JSON entry of the file's ``metadata_props`` (the spec by default).

    Raises:
        OnnxFormatError: not an ONNX file, no such entry, or an entry that is not a JSON object.
    """
    props = read_onnx_metadata(source)
    if key not in props:
        raise OnnxFormatError(f"the ONNX file has no {key} entry")
    try:
        value = json.loads(props[key])
    except json.JSONDecodeError as exc:
        raise OnnxFormatError(f"{key} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise OnnxFormatError(f"{key} must be a JSON object")
    return value


def looks_like_onnx(head: bytes) -> bool:
    """Whether a file's first bytes can be an ONNX model rather than a ``.keras`` zip archive.

    ``ModelProto`` starts with field 1 (``ir_version``, varint: byte 0x08); a zip with ``PK``.
    """
    return head[:1] == b"\x08"


class OnnxNetwork:
    """An exported network in an ONNX Runtime session: float32 (batch, ...) -> float32 (batch, ...).

    Args:
        source: path or bytes of the ``.onnx`` file.
        threads: intra-op threads (None: ``INFERENCE_THREADS`` or 1; 0: ONNX Runtime's default).

    Raises:
        onnxruntime's errors (``Fail``, ``InvalidGraph``, ...) for a file it cannot load.
    """

    def __init__(self, source: str | Path | bytes, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get(THREADS_ENV, "1")) if threads is None else threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        payload = source if isinstance(source, bytes) else str(source)
        self.session = ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"the ONNX graph has {len(inputs)} inputs and {len(outputs)} outputs; expected one each")
        self.input_name = inputs[0].name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inputs[0].shape)
        self.output_shape = tuple(d if isinstance(d, int) else None for d in outputs[0].shape)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch. float32 (batch, time, channels) -> float32 (batch, [time,] labels)."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
