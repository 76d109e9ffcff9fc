import json

import pytest

from inference.model import DEFAULT_MODEL_PATH, read_metadata, read_spec
from inference.spec import ModelSpec, ModelSpecError


@pytest.fixture(scope="module")
def shipped() -> dict:
    return read_metadata(DEFAULT_MODEL_PATH)


def test_the_shipped_metadata_round_trips_through_the_spec(shipped):
    spec = ModelSpec.from_dict(shipped)
    assert spec.to_dict() == shipped
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.exercises == ("burpee", "sit_up", "squat")
    assert spec.input_channels == spec.channels + spec.derived_channels
    assert spec.is_sequence
    assert spec.min_duration_s == 0.0
    assert read_spec(DEFAULT_MODEL_PATH) == spec


def test_the_spec_is_frozen(shipped):
    spec = ModelSpec.from_dict(shipped)
    with pytest.raises(AttributeError):
        spec.version = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 3}, "version must be a string"),
        ({"channels": []}, "channels is empty"),
        ({"channels": "gravity_x"}, "channels must be a list"),
        ({"sample_rate_hz": 0}, "sample_rate_hz must be a positive number"),
        ({"sample_rate_hz": "10"}, "sample_rate_hz must be a number"),
        ({"window": 2.5}, "window must be an integer"),
        ({"label_offset": 999}, "label_offset must lie in"),
        ({"labels": ["walk", "break"]}, "labels must be 'break'"),
        ({"labels": ["squat.first_half", "squat.second_half"]}, "labels must be 'break'"),
        ({"architecture": "transformer"}, "architecture must be one of"),
        ({"angle_encoding": "degrees"}, "angle_encoding must be one of"),
        ({"derived_channels": ["magic"]}, "derived_channels magic are not among"),
        ({"scaling": {"mean": [0.0], "std": [1.0]}}, "scaling has 1 means"),
        ({"scaling": "standard"}, "scaling: needs mean and std"),
        ({"counting": {"break_weight": -1}}, "counting: break_weight must be positive"),
        ({"hyperparameters": []}, "hyperparameters must be a JSON object"),
    ],
)
def test_inconsistent_metadata_is_refused_naming_the_field(shipped, change, message):
    with pytest.raises(ModelSpecError, match=message):
        ModelSpec.from_dict({**shipped, **change})


def test_missing_keys_are_named(shipped):
    partial = {k: v for k, v in shipped.items() if k not in ("labels", "scaling")}
    with pytest.raises(ModelSpecError, match="lacks labels, scaling"):
        ModelSpec.from_dict(partial)
    with pytest.raises(ModelSpecError, match="JSON object"):
        ModelSpec.from_dict([])  # type: ignore[arg-type]


def test_keys_of_later_versions_are_ignored(shipped):
    assert ModelSpec.from_dict({**shipped, "runtime": "onnx"}) == ModelSpec.from_dict(shipped)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"window": 3_000_000}, r"window must lie in \[1, 2048\] samples, not 3000000"),
        ({"window": 60_000}, r"window must lie in \[1, 2048\]"),
        ({"chunk": 1_000_000}, "chunk must be at most 6000 samples"),
        ({"context": 50_000}, "context must be at most 1000 samples"),
        ({"sample_rate_hz": 1e9}, "sample_rate_hz must be at most 200 Hz"),
        ({"stride": 300}, r"stride must be at most window \(256\)"),
        ({"labels": ["break"] + [f"e{i}.{h}" for i in range(100) for h in ("first_half", "second_half")]},
         "labels must be at most 129, not 201"),
        ({"labels": ["break", "x" * 1000 + ".first_half", "x" * 1000 + ".second_half"]},
         "labels must be at most 64 characters each; 2 are longer"),
        ({"channels": [f"c{i}" for i in range(100)]}, "channels and derived_channels must be at most 64"),
    ],
)  # fmt: skip
def test_values_beyond_the_upper_bounds_are_refused_naming_the_field(shipped, change, message):
    """Issue 29 item 3: a window of 3,000,000 crashed the validator; 60,000 cost 1.4 GiB."""
    with pytest.raises(ModelSpecError, match=message):
        ModelSpec.from_dict({**shipped, **change})


def test_a_refused_label_is_quoted_short(shipped):
    with pytest.raises(ModelSpecError) as info:
        ModelSpec.from_dict({**shipped, "labels": ["break", "Y" * 100_000]})
    assert len(str(info.value)) < 500
