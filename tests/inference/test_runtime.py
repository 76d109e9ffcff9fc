"""The serving runtime: the shipped .onnx export against its .keras source, and what each path imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference.export import TOLERANCE
from inference.model import DEFAULT_KERAS_PATH, DEFAULT_MODEL_PATH, file_checksum, read_export_record, read_spec

ROOT = Path(__file__).resolve().parents[2]
EXERMOTE = ROOT.parent / "shared" / "data" / "exermote"


def _modules_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; which of tensorflow / onnxruntime it imported."""
    probe = code + "\nimport json, sys\nprint(json.dumps({m: m in sys.modules for m in ('tensorflow', 'onnxruntime')}))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_shipped_export_is_made_from_the_shipped_keras():
    sidecar = json.loads(Path(f"{DEFAULT_MODEL_PATH}.json").read_text())
    record = read_export_record(DEFAULT_MODEL_PATH)
    assert sidecar["sha256"] == file_checksum(DEFAULT_MODEL_PATH)
    assert record["source_sha256"] == sidecar["source_sha256"] == file_checksum(DEFAULT_KERAS_PATH)
    assert record["max_abs_diff"] <= record["tolerance"] <= TOLERANCE
    assert read_spec(DEFAULT_MODEL_PATH) == read_spec(DEFAULT_KERAS_PATH)


def test_generic_count_imports_neither_tensorflow_nor_the_runtime():
    code = (
        "import numpy as np\n"
        "from inference.io import Recording\n"
        "from inference.pipeline import count_recording\n"
        "t = np.arange(600) / 50.0\n"
        "acc = np.stack([np.sin(2 * np.pi * 2 * t), np.cos(2 * np.pi * 2 * t), 0.1 * t], 1).astype(np.float32)\n"
        "r = Recording(time_s=t, samples=acc, channels=('acc_x', 'acc_y', 'acc_z'), source_format='csv')\n"
        "result = count_recording(r, model=None, exercise='jump_rope')\n"
        "assert result.total_reps > 0, result\n"
    )
    assert _modules_after(code) == {"tensorflow": False, "onnxruntime": False}


def test_classifier_count_uses_the_runtime_without_tensorflow():
    code = (
        "import numpy as np\n"
        "from inference.pipeline import get_default_model\n"
        "m = get_default_model()\n"
        "p = m.phase_probabilities(np.zeros((700, len(m.spec.input_channels)), np.float32))\n"
        "assert p.shape == (700, len(m.spec.labels))\n"
    )
    assert _modules_after(code) == {"tensorflow": False, "onnxruntime": True}


@pytest.mark.skipif(not EXERMOTE.is_dir(), reason=f"the Exermote recordings are not at {EXERMOTE}")
def test_export_matches_keras_on_every_exermote_recording():
    from inference.lab.export import _counts, scaled_sessions
    from inference.model import load_model

    keras_model, onnx_model = load_model(DEFAULT_KERAS_PATH), load_model(DEFAULT_MODEL_PATH)
    sessions = scaled_sessions(EXERMOTE, onnx_model.spec)
    assert sessions
    for name, x, scaled in sessions:
        diff = np.abs(keras_model.phase_probabilities(scaled) - onnx_model.phase_probabilities(scaled)).max()
        assert diff <= TOLERANCE, name
        assert _counts(keras_model, x, scaled) == _counts(onnx_model, x, scaled), name
