"""Validation of a model file before anything is stored.

A file is accepted when it loads, its metadata is complete, the network's input and
output shapes match the metadata, a dry run on a zero window works
(:func:`inference.model.load_model`), its version string fits the registry, its labels
are phases the counter understands, and the whole counting path runs on a short
synthetic recording with the file's own preprocessing and counting parameters.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
from django.conf import settings

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


def validate_model_file(data: bytes) -> ValidatedModelFile:
    """Check an uploaded model file. Loads TensorFlow (call it in the request or a worker).

    Raises:
        ModelFileError: with the reason the file is refused.
    """
    if not data:
        raise ModelFileError("the file is empty")
    max_bytes = settings.FITNESS_MAX_MODEL_BYTES
    if len(data) > max_bytes:
        raise ModelFileError(f"the file is larger than {max_bytes} bytes")
    from inference.model import load_model_bytes

    model = load_model_bytes(data)
    spec = model.spec
    version = spec.version
    if len(version) > VERSION_MAX_LENGTH or not _VERSION_RE.match(version):
        raise ModelFileError(
            f"metadata version {version!r} must be 1-{VERSION_MAX_LENGTH} characters of letters, digits and ._+-"
        )
    _dry_run_counting(model)
    return ValidatedModelFile(
        data=data, checksum=hashlib.sha256(data).hexdigest(), version=version, metadata=spec.to_dict()
    )


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
