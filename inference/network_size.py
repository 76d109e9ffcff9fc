"""The size of a ``.keras`` network read from its ``config.json``, before anything is built.

Keras allocates every weight when it builds a network from its config, before the weights file
is even read: a 2.8 MB file whose first ``Conv1D`` says 2,000,000 filters makes TensorFlow
allocate gigabytes. :func:`check_keras_network` reads the config (JSON, no TensorFlow) and
refuses a network whose parameter count or largest tensor exceeds :data:`MAX_PARAMETERS` or
:data:`MAX_TENSOR_ELEMENTS`, naming the layer.

The count is an upper bound: every layer class the registry's networks use is sized
(:data:`SIZED_LAYERS`); any other class is refused, since its size cannot be told. In a
``Sequential`` each layer reads the previous one's width; in a functional model each layer is
assumed to read the widest tensor before it (a ``Concatenate``, all of them), so a forged
``build_config`` or ``inbound_nodes`` cannot make a layer look smaller than it is.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from inference.spec import ModelSpec

CONFIG_ENTRY = "config.json"
#: Largest ``config.json`` read (bytes, as the zip directory states it); the shipped one is 81 KB.
MAX_CONFIG_BYTES = 4 << 20
#: Most weights (float32 values) in a network (40 MB of float32): 40x the ten-network ensemble
#: shipped before the distilled network (its bound reads 246,150; the distilled one's 24,615).
MAX_PARAMETERS = 10_000_000
#: Most values in one tensor, a weight or one sequence's activations (``time x width``,
#: ``time``: the window, or a sequence model's ``chunk + 2 * context``): 64 MiB of float32;
#: the shipped model's largest is 102,400 (an LSTM's gates, 800 samples x 4 x 32 units).
MAX_TENSOR_ELEMENTS = 1 << 24
#: Most layers (nested ones included; a wrapped layer counts for each use); the shipped ensemble has 93.
MAX_LAYERS = 2000

_CONTAINERS = ("Sequential", "Functional", "Model")
_RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
#: Layers that keep their input's width and hold at most a few weights per channel.
_WIDTH_PRESERVING = {
    "Dropout": 0, "SpatialDropout1D": 0, "GaussianNoise": 0, "GaussianDropout": 0, "Activation": 0,
    "ReLU": 0, "Softmax": 0, "LeakyReLU": 0, "Masking": 0, "MaxPooling1D": 0, "AveragePooling1D": 0,
    "GlobalAveragePooling1D": 0, "GlobalMaxPooling1D": 0, "BatchNormalization": 4, "LayerNormalization": 2,
    "Average": 0, "Add": 0, "Maximum": 0, "Minimum": 0, "Multiply": 0, "Subtract": 0,
}  # fmt: skip
SIZED_LAYERS = (
    "InputLayer", *_CONTAINERS, "Conv1D", "Dense", *_RECURRENT_GATES, "Bidirectional", "TimeDistributed",
    "Concatenate", *_WIDTH_PRESERVING,
)  # fmt: skip


class NetworkSizeError(ValueError):
    """A network too large to build, or a config whose size cannot be told; the message names the layer."""


@dataclass
class NetworkSize:
    """Upper bounds read from a config: ``parameters`` (weights, float32 values), ``largest_tensor``
    (values in the largest weight or one sequence's activations) and the layer that holds it."""

    parameters: int = 0
    largest_tensor: int = 0
    largest_layer: str = ""
    layers: int = 0


def time_steps(spec: ModelSpec) -> int:
    """Samples one sequence holds in the network: the window, or ``max(window, chunk + 2 * context)``."""
    if spec.is_sequence:
        return max(spec.window, spec.chunk + 2 * spec.context)
    return spec.window


def read_keras_config(path: str | Path) -> dict:
    """The ``config.json`` of a ``.keras`` archive (size checked in the zip directory first).

    Raises:
        NetworkSizeError: no config, too large, or not a JSON object.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            size = zf.getinfo(CONFIG_ENTRY).file_size
            if size > MAX_CONFIG_BYTES:
                raise NetworkSizeError(f"{CONFIG_ENTRY} inflates to {size} bytes; at most {MAX_CONFIG_BYTES}")
            config = json.loads(zf.read(CONFIG_ENTRY))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, RecursionError) as exc:
        if isinstance(exc, NetworkSizeError):
            raise
        raise NetworkSizeError(f"the file has no readable {CONFIG_ENTRY}: {exc}") from exc
    if not isinstance(config, dict):
        raise NetworkSizeError(f"{CONFIG_ENTRY} must be a JSON object")
    return config


def keras_network_size(config: dict, *, n_channels: int, steps: int) -> NetworkSize:
    """Upper bounds on a Keras network's size from its config (no TensorFlow).

    Args:
        config: the ``config.json`` of a ``.keras`` archive.
        n_channels: input channels the metadata declares (the input is at least this wide).
        steps: samples per sequence (:func:`time_steps`).

    Raises:
        NetworkSizeError: a layer class that is not sized, a field that is not a positive
            integer, or more than :data:`MAX_LAYERS` layers.
    """
    size = NetworkSize()
    try:
        _walk(config, n_channels, size, steps, "model")
    except RecursionError as exc:
        raise NetworkSizeError("the network's config is nested too deeply") from exc
    return size


def check_keras_network(path: str | Path, spec: ModelSpec) -> NetworkSize:
    """Refuse a ``.keras`` file whose network is larger than the bounds, before it is built.

    Raises:
        NetworkSizeError: the network exceeds :data:`MAX_PARAMETERS` or :data:`MAX_TENSOR_ELEMENTS`
            (the message names the layer and the figures), or its size cannot be told.
    """
    size = keras_network_size(read_keras_config(path), n_channels=len(spec.input_channels), steps=time_steps(spec))
    if size.parameters > MAX_PARAMETERS:
        raise NetworkSizeError(
            f"the network has up to {size.parameters:,} parameters; at most {MAX_PARAMETERS:,} "
            f"(largest layer: {size.largest_layer})"
        )
    if size.largest_tensor > MAX_TENSOR_ELEMENTS:
        raise NetworkSizeError(
            f"layer {size.largest_layer} needs a tensor of {size.largest_tensor:,} values; "
            f"at most {MAX_TENSOR_ELEMENTS:,} (its filters or units, times {time_steps(spec)} samples)"
        )
    return size


def _positive(cfg: dict, key: str, name: str, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if isinstance(value, list) and len(value) == 1:  # kernel_size, strides: [5]
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise NetworkSizeError(f"layer {name}: {key} must be a positive integer, not {str(value)[:40]}")
    return value


def _note(size: NetworkSize, name: str, params: int, *tensors: int) -> None:
    size.parameters += params
    for elements in tensors:
        if elements > size.largest_tensor:
            size.largest_tensor, size.largest_layer = elements, name


def _walk_container(cls: str, cfg: dict, width: int, size: NetworkSize, *, steps: int, name: str) -> int:
    """A ``Sequential`` chains its layers' widths; in a functional model each layer may read the
    widest tensor before it, and a ``Concatenate`` all of them."""
    children = cfg.get("layers")
    if not isinstance(children, list):
        raise NetworkSizeError(f"layer {name}: layers must be a list")
    if cls == "Sequential":
        for child in children:
            width = _walk(child, width, size, steps, name)
        return width
    widths: list[int] = []
    for child in children:
        out = _walk(child, max([width, *widths]), size, steps, name)
        if isinstance(child, dict) and child.get("class_name") == "Concatenate":
            out = sum([width, *widths])
        widths.append(out)
    return max([width, *widths])


def _walk(layer: object, width: int, size: NetworkSize, steps: int, where: str) -> int:  # noqa: PLR0911
    """Add ``layer``'s weights and tensors to ``size``; return its output width (an upper bound)."""
    if not isinstance(layer, dict):
        raise NetworkSizeError(f"{where}: a layer must be a JSON object")
    cls = layer.get("class_name")
    cfg = layer.get("config")
    if not isinstance(cfg, dict):
        cfg = {}
    name = f"{str(cfg.get('name') or layer.get('name') or where)[:60]} ({str(cls)[:40]})"
    size.layers += 1
    if size.layers > MAX_LAYERS:
        raise NetworkSizeError(f"the network has more than {MAX_LAYERS} layers")
    if cls not in SIZED_LAYERS:
        raise NetworkSizeError(
            f"layer {name}: class {str(cls)[:40]!r} is not one the registry can size before building "
            f"(known: {', '.join(sorted(set(SIZED_LAYERS)))})"
        )
    if cls in _CONTAINERS:
        return _walk_container(cls, cfg, width, size, steps=steps, name=name)
    if cls == "InputLayer":
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape") or [None, cfg.get("shape")]
        last = shape[-1] if isinstance(shape, list) and shape else None
        declared = _positive({"shape": last}, "shape", name)
        _note(size, name, 0, steps * max(width, declared))
        return max(width, declared)
    if cls == "Conv1D":
        filters, kernel = _positive(cfg, "filters", name), _positive(cfg, "kernel_size", name)
        groups = _positive(cfg, "groups", name, 1)
        weights = kernel * width * filters // groups
        _note(size, name, weights + filters, weights, steps * filters)
        return filters
    if cls == "Dense":
        units = _positive(cfg, "units", name)
        _note(size, name, width * units + units, width * units, steps * units)
        return units
    if cls in _RECURRENT_GATES:
        units, gates = _positive(cfg, "units", name), _RECURRENT_GATES[cls]
        weights = gates * units * (width + units)
        _note(size, name, weights + 2 * gates * units, gates * units * max(width, units), steps * gates * units)
        return units
    if cls in ("Bidirectional", "TimeDistributed"):
        inner = cfg.get("layer")
        out = _walk(inner, width, size, steps, name)
        if cls == "Bidirectional":
            backward = cfg.get("backward_layer")
            out += _walk(backward if backward is not None else inner, width, size, steps, name)
            _note(size, name, 0, steps * out)
        return out
    if cls == "Concatenate":
        return width  # its width is set by the container (the sum of what may feed it)
    per_channel = _WIDTH_PRESERVING[cls]
    _note(size, name, per_channel * width, steps * width)
    return width
