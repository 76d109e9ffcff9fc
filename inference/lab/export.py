"""``python -m inference.lab export``: the shipped ``.keras`` -> ``.onnx`` for the serving runtime.

Exports with :func:`inference.export.export_model`, checked on its synthetic inputs and on
every Exermote recording of ``--data`` (scaled as the pipeline scales them), then compares
the counts of both models on each recording. Writes the ``.onnx`` and, beside it,
``<name>.onnx.json``: the export record with the file's SHA-256, the source's, the
tolerance, the largest difference measured and how many recordings counted identically.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def scaled_sessions(data: Path, spec) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, unscaled on-grid x, scaled x)`` of every Exermote CSV in ``data`` (none if absent)."""
    from inference.io import read_recording
    from inference.pipeline import _on_grid

    out = []
    for path in sorted(data.glob("*.csv")) if data.is_dir() else []:
        x = _on_grid(read_recording(path, "exermote"), spec)
        out.append((path.name, x, spec.scaling.transform(x)))
    return out


def _counts(model, x: np.ndarray, scaled: np.ndarray) -> list[tuple[str, int]]:
    from inference.counting import count_probabilities
    from inference.cycles import gravity_columns

    spec = model.spec
    probs = model.phase_probabilities(scaled)
    sets = count_probabilities(
        probs, spec.labels, spec.sample_rate_hz, spec.counting, gravity_columns(x, spec.channels)
    )
    return [(s.exercise, s.reps) for s in sets[1]]


def run(source: Path, out: Path, data: Path, tolerance: float) -> dict:
    """Export ``source`` to ``out``, check it on ``data``'s recordings; returns the sidecar record."""
    from inference.export import export_model
    from inference.model import file_checksum, load_model, read_spec

    sessions = scaled_sessions(data, read_spec(source))
    record = export_model(source, out, tolerance=tolerance, extra_inputs=[s for _, _, s in sessions])
    keras_model, onnx_model = load_model(source), load_model(out)
    differ = [name for name, x, s in sessions if _counts(keras_model, x, s) != _counts(onnx_model, x, s)]
    sidecar = {
        "file": out.name,
        "sha256": file_checksum(out),
        "source": source.name,
        **record,
        "recordings_checked": len(sessions),
        "recordings_counted_identically": len(sessions) - len(differ),
        "counts_differ": differ,
    }
    Path(f"{out}.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return sidecar
