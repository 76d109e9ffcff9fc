"""A network's size read from its config.json, before anything is built (issue 29, item 3)."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from inference.model import DEFAULT_KERAS_PATH, read_spec
from inference.network_size import (
    MAX_PARAMETERS,
    MAX_TENSOR_ELEMENTS,
    NetworkSizeError,
    check_keras_network,
    keras_network_size,
    read_keras_config,
)


def rewrite_config(dst: Path, change) -> Path:
    """Copy the shipped ``default.keras`` with ``change(config)`` applied to its config.json."""
    with zipfile.ZipFile(DEFAULT_KERAS_PATH) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            zout.writestr(item.filename, data)
    return dst


def first_member(config: dict) -> list[dict]:
    """The layers of the shipped network (InputLayer, Conv1D, Conv1D, Bidirectional, ...): the
    Sequential network itself, or an ensemble's first member."""
    layers = config["config"]["layers"]
    return layers if config["class_name"] == "Sequential" else layers[1]["config"]["layers"]


def first_conv_name() -> str:
    """The name of the shipped network's first Conv1D, as errors name it."""
    return first_member(read_keras_config(DEFAULT_KERAS_PATH))[1]["config"]["name"]


@pytest.fixture(scope="module")
def spec():
    return read_spec(DEFAULT_KERAS_PATH)


def test_the_shipped_network_is_far_inside_the_bounds(spec):
    size = check_keras_network(DEFAULT_KERAS_PATH, spec)
    # Keras counts 24,359 weights (the ensemble of ten: 243,590); the bound adds a second bias per LSTM gate.
    assert 24_359 <= size.parameters < MAX_PARAMETERS / 20
    assert size.largest_tensor == 800 * 4 * 32  # an LSTM's gates over chunk + 2 * context samples
    assert size.largest_tensor < MAX_TENSOR_ELEMENTS / 100


def test_two_million_filters_are_refused_naming_the_layer_without_building(spec, tmp_path):
    def bomb(config):
        first_member(config)[1]["config"]["filters"] = 2_000_000

    path = rewrite_config(tmp_path / "bomb.keras", bomb)
    assert path.stat().st_size < 4_000_000  # a small file asking for gigabytes
    started = time.monotonic()
    expected = rf"parameters; at most 10,000,000 \(largest layer: {first_conv_name()} \(Conv1D\)"
    with pytest.raises(NetworkSizeError, match=expected):
        check_keras_network(path, spec)
    assert time.monotonic() - started < 5  # generous: it reads JSON only (about 20 ms)


def test_wide_activations_are_refused_even_with_few_weights(spec):
    config = read_keras_config(DEFAULT_KERAS_PATH)
    # 1 x 1 x 30,000 weights, but 800 samples x 30,000 activations per sequence.
    first_member(config)[1]["config"].update(filters=30_000, kernel_size=[1])
    first_member(config)[0]["config"]["batch_shape"] = [None, None, 1]
    size = keras_network_size(config, n_channels=1, steps=800)
    assert size.largest_tensor >= 800 * 30_000 > MAX_TENSOR_ELEMENTS


def test_a_forged_input_width_does_not_hide_a_layer(spec):
    """Declared input widths (build_config, InputLayer) cannot make a layer look narrower than the
    tensor that really feeds it."""
    config = read_keras_config(DEFAULT_KERAS_PATH)
    layers = first_member(config)
    layers[2]["config"]["filters"] = 5_000
    layers[3]["build_config"] = {"input_shape": [None, None, 1]}
    size = keras_network_size(config, n_channels=13, steps=800)
    assert size.parameters > 4 * 32 * 5_000  # the LSTM reads 5,000 channels


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda layers: layers[1].update(class_name="Conv2D"), "class 'Conv2D' is not one the registry can size"),
        (lambda layers: layers[1]["config"].update(filters="many"), "filters must be a positive integer"),
        (lambda layers: layers[1]["config"].update(filters=-3), "filters must be a positive integer"),
        (lambda layers: layers[4].update(class_name="Lambda"), "class 'Lambda' is not one"),
    ],
)
def test_layers_that_cannot_be_sized_are_refused_naming_them(change, message):
    config = read_keras_config(DEFAULT_KERAS_PATH)
    change(first_member(config))
    with pytest.raises(NetworkSizeError, match=message):
        keras_network_size(config, n_channels=13, steps=800)


def test_an_oversized_config_is_not_read(tmp_path):
    path = tmp_path / "big-config.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", b" " * (5 << 20))
    with pytest.raises(NetworkSizeError, match=r"config\.json inflates to"):
        read_keras_config(path)
