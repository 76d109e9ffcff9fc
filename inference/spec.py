"""ModelSpec: everything a model file says about its input, its labels and its counting.

A trained model carries its specification inside the file (``inference_metadata.json``
in the ``.keras`` archive, :mod:`inference.model`), so it is never used with the wrong
preprocessing (the scikit-learn / Keras habit of a typed, fitted configuration instead
of a dict read in many places). Everything that needs a model's settings takes a
:class:`ModelSpec`: the pipeline, the worker's method choice, the upload's check, the
registry; the registry stores :meth:`ModelSpec.to_dict`.

This module imports neither TensorFlow nor the network runtime: a web process reads a
spec to decide which method would count an upload without loading the network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from inference.counting import CountingParams
from inference.io import BREAK
from inference.preprocessing import DERIVED_CHANNELS, Scaler

ARCHITECTURES = ("sequence", "window")
ANGLE_ENCODINGS = ("raw", "sin")
#: Keys a model file's metadata must have (older files lack ``architecture``: window).
REQUIRED_KEYS = (
    "version", "channels", "sample_rate_hz", "window", "label_offset", "labels",
    "scaling", "angle_encoding", "counting", "training_data_digest", "hyperparameters",
)  # fmt: skip
#: A phase label other than ``break``: ``<exercise>.first_half`` or ``<exercise>.second_half``.
PHASE_RE = re.compile(r"^[a-z][a-z0-9_]*\.(first_half|second_half)$")

# Upper bounds: the network's input, the dry run and a session's batch grow with these, so a
# file is refused before anything is built (docs/reliability.md, "Model files"). Each is far
# above the shipped model's value and far below what hurts a worker.
#: Highest model grid (Hz): human movement has no content above about 20 Hz; uploads may be
#: faster (up to 1000 Hz, :data:`inference.io.MAX_SAMPLE_RATE_HZ`) and are resampled down.
MAX_SAMPLE_RATE_HZ = 200.0
#: Longest window (samples): 8x the shipped 256 (25.6 s at 10 Hz); 20 s at 100 Hz.
MAX_WINDOW = 2048
#: Longest chunk a sequence model labels at once (samples): 10x the shipped 600 (10 min at 10 Hz).
MAX_CHUNK = 6000
#: Widest context on each side of a chunk (samples): 10x the shipped 100.
MAX_CONTEXT = 1000
#: Most labels: ``break`` and two halves of 64 exercises (the catalog has 57; the shipped model 7 labels).
MAX_LABELS = 129
#: Most channels read from a recording, and most characters in a channel or label name
#: (the longest catalog phase, ``<36-character id>.second_half``, has 48).
MAX_CHANNELS = 64
MAX_NAME_CHARS = 64


class ModelSpecError(ValueError):
    """Model metadata that is incomplete or inconsistent; the message names the field."""


@dataclass(frozen=True)
class ModelSpec:
    """A model's input, labels and counting parameters, with its provenance.

    Attributes:
        version: the version string a counted session records.
        architecture: ``sequence`` (labels a whole session; :func:`inference.model.build_sequence_network`)
            or ``window`` (one label per ``window``-sample window; Exermote's CNN-LSTM).
        channels: recording channels the model reads, in order (what an upload must have).
        derived_channels: channels computed from ``channels``
            (:func:`inference.preprocessing.derive_channels`), appended after them.
        sample_rate_hz: the model's grid (Hz); recordings are resampled to it.
        window: window length (samples) of a window model; the training crop of a sequence model.
        label_offset: a window's label is the sample ``label_offset`` samples before its end.
        stride: stride (samples) between windows at inference (1: one window per sample).
        labels: phase names, in the network's output order: ``break`` and
            ``<exercise>.first_half`` / ``<exercise>.second_half``.
        angle_encoding: ``raw`` or ``sin`` (attitude angles as sine and cosine).
        scaling: per-channel standardisation of ``channels + derived_channels``.
        counting: the state machine's parameters (:class:`inference.counting.CountingParams`).
        chunk, context: a sequence model labels ``chunk`` samples at a time, reading ``context``
            samples on each side.
        training_data_digest: SHA-256 over the training files; training_data: dataset and subjects;
            hyperparameters: what trained it; code_version: the package version that trained it;
            evaluation: leave-one-subject-out figures measured before training.
    """

    version: str
    channels: tuple[str, ...]
    sample_rate_hz: float
    window: int
    label_offset: int
    labels: tuple[str, ...]
    scaling: Scaler
    counting: CountingParams
    architecture: str = "window"
    derived_channels: tuple[str, ...] = ()
    stride: int = 1
    angle_encoding: str = "raw"
    chunk: int = 600
    context: int = 100
    training_data_digest: str = ""
    training_data: dict = field(default_factory=dict)
    hyperparameters: dict = field(default_factory=dict)
    code_version: str = ""
    evaluation: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise ModelSpecError("model metadata: " + "; ".join(problems))

    @property
    def input_channels(self) -> tuple[str, ...]:
        """What the network reads, in order: ``channels`` then ``derived_channels``."""
        return self.channels + self.derived_channels

    @property
    def exercises(self) -> tuple[str, ...]:
        """Exercises that have phases in this model, sorted, e.g. ``('burpee', 'sit_up', 'squat')``."""
        return tuple(sorted({lab.split(".")[0] for lab in self.labels if "." in lab}))

    @property
    def is_sequence(self) -> bool:
        return self.architecture == "sequence"

    @property
    def min_duration_s(self) -> float:
        """Shortest recording (s) the classifier can label: one window for a window model, else 0."""
        return 0.0 if self.is_sequence else (self.window - 1) / self.sample_rate_hz

    def to_dict(self) -> dict:
        """JSON-ready metadata, as stored in the model file and in the registry."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Scaler | CountingParams):
                value = value.to_dict()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> ModelSpec:
        """Read and validate model metadata (a file's ``inference_metadata.json``).

        Keys that are not fields are ignored (files written by later versions).

        Raises:
            ModelSpecError: a required key is missing, or a value has the wrong type or
                disagrees with another (e.g. scaling constants for another number of channels).
        """
        if not isinstance(d, Mapping):
            raise ModelSpecError(f"model metadata must be a JSON object, not {type(d).__name__}")
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if missing:
            raise ModelSpecError(f"model metadata lacks {', '.join(missing)}")
        try:
            scaling = Scaler.from_dict(d["scaling"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelSpecError(f"model metadata scaling: needs mean and std lists ({exc})") from exc
        try:
            counting = CountingParams.from_dict(d["counting"])
        except (AttributeError, TypeError, ValueError) as exc:
            raise ModelSpecError(f"model metadata counting: {exc}") from exc
        try:
            return cls(
                version=_text(d["version"], "version"),
                architecture=str(d.get("architecture", "window")),
                channels=_names(d["channels"], "channels"),
                derived_channels=_names(d.get("derived_channels", ()), "derived_channels"),
                sample_rate_hz=_number(d["sample_rate_hz"], "sample_rate_hz"),
                window=_integer(d["window"], "window"),
                label_offset=_integer(d["label_offset"], "label_offset"),
                stride=_integer(d.get("stride", 1), "stride"),
                labels=_names(d["labels"], "labels"),
                angle_encoding=str(d["angle_encoding"]),
                scaling=scaling,
                counting=counting,
                chunk=_integer(d.get("chunk", 600), "chunk"),
                context=_integer(d.get("context", 100), "context"),
                training_data_digest=str(d["training_data_digest"]),
                training_data=_object(d.get("training_data", {}), "training_data"),
                hyperparameters=_object(d["hyperparameters"], "hyperparameters"),
                code_version=str(d.get("code_version", "")),
                evaluation=_object(d.get("evaluation") or {}, "evaluation"),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ModelSpecError):
                raise
            raise ModelSpecError(f"model metadata: {exc}") from exc


def _problems(spec: ModelSpec):  # noqa: PLR0912 - one check per field
    """What is inconsistent in ``spec`` (one string each)."""
    if not spec.version:
        yield "version is empty"
    if spec.architecture not in ARCHITECTURES:
        yield f"architecture must be one of {', '.join(ARCHITECTURES)}, not {spec.architecture!r}"
    if not spec.channels:
        yield "channels is empty"
    if len(set(spec.input_channels)) != len(spec.input_channels):
        yield "channels and derived_channels repeat a name"
    unknown = [c for c in spec.derived_channels if c not in DERIVED_CHANNELS]
    if unknown:
        yield f"derived_channels {', '.join(unknown)} are not among {', '.join(DERIVED_CHANNELS)}"
    if not (math.isfinite(spec.sample_rate_hz) and spec.sample_rate_hz > 0):
        yield f"sample_rate_hz must be a positive number, not {spec.sample_rate_hz}"
    elif spec.sample_rate_hz > MAX_SAMPLE_RATE_HZ:
        yield f"sample_rate_hz must be at most {MAX_SAMPLE_RATE_HZ:g} Hz, not {spec.sample_rate_hz:g}"
    if not 1 <= spec.window <= MAX_WINDOW:
        yield f"window must lie in [1, {MAX_WINDOW}] samples, not {spec.window}"
    if not 0 <= spec.label_offset < max(spec.window, 1):
        yield f"label_offset must lie in [0, window), not {spec.label_offset}"
    if spec.stride < 1 or spec.chunk < 1 or spec.context < 0:
        yield "stride and chunk must be at least 1 and context at least 0"
    if spec.stride > max(spec.window, 1):
        yield f"stride must be at most window ({spec.window}) samples, not {spec.stride}"
    yield from _bound_problems(spec)
    bad = [lab for lab in spec.labels if lab != BREAK and not PHASE_RE.match(lab)]
    if BREAK not in spec.labels or bad or len(set(spec.labels)) != len(spec.labels):
        yield (
            "labels must be 'break' and '<exercise>.first_half' / '<exercise>.second_half' phases, each once"
            + (f"; not {', '.join(repr(lab[:MAX_NAME_CHARS]) for lab in bad[:5])}" if bad else "")
        )
    if spec.angle_encoding not in ANGLE_ENCODINGS:
        yield f"angle_encoding must be one of {', '.join(ANGLE_ENCODINGS)}, not {spec.angle_encoding!r}"
    n = len(spec.input_channels)
    if len(spec.scaling.mean) != n or len(spec.scaling.std) != n:
        yield f"scaling has {len(spec.scaling.mean)} means and {len(spec.scaling.std)} stds for {n} input channels"
    elif not all(math.isfinite(v) for v in spec.scaling.mean) or not all(
        math.isfinite(v) and v > 0 for v in spec.scaling.std
    ):
        yield "scaling means must be finite and stds positive"
    unknown_phases = [name for name in spec.counting.min_run_s if name not in spec.labels]
    if unknown_phases:
        yield f"counting min_run_s names labels the model lacks: {', '.join(unknown_phases[:5])}"


def _bound_problems(spec: ModelSpec):
    """Which of the upper bounds (chunk, context, channels, labels) ``spec`` exceeds (one string each)."""
    if spec.chunk > MAX_CHUNK:
        yield f"chunk must be at most {MAX_CHUNK} samples, not {spec.chunk}"
    if spec.context > MAX_CONTEXT:
        yield f"context must be at most {MAX_CONTEXT} samples, not {spec.context}"
    if len(spec.input_channels) > MAX_CHANNELS:
        yield f"channels and derived_channels must be at most {MAX_CHANNELS}, not {len(spec.input_channels)}"
    long_names = [name for name in spec.input_channels if len(name) > MAX_NAME_CHARS]
    if long_names:
        yield f"channels names must be at most {MAX_NAME_CHARS} characters; {len(long_names)} are longer"
    if len(spec.labels) > MAX_LABELS:
        yield f"labels must be at most {MAX_LABELS}, not {len(spec.labels)}"
    long_labels = [lab for lab in spec.labels if len(lab) > MAX_NAME_CHARS]
    if long_labels:
        yield f"labels must be at most {MAX_NAME_CHARS} characters each; {len(long_labels)} are longer"


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ModelSpecError(f"model metadata {name} must be a string, not {type(value).__name__}")
    return value


def _names(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ModelSpecError(f"model metadata {name} must be a list of names")
    return tuple(value)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ModelSpecError(f"model metadata {name} must be a number, not {value!r}")
    return float(value)


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelSpecError(f"model metadata {name} must be an integer, not {value!r}")
    return value


def _object(value: object, name: str) -> dict:
    if not isinstance(value, Mapping):
        raise ModelSpecError(f"model metadata {name} must be a JSON object")
    return dict(value)
