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


def _cli_modules(*args: str) -> tuple[dict, list[dict]]:
    """``python -m inference`` in a fresh interpreter: which runtimes it imported, and its JSON lines."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['inference', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('inference', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    )
    probe = code + "import json\nprint(json.dumps({m: m in sys.modules for m in ('tensorflow', 'onnxruntime')}))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    *lines, modules = out.stdout.strip().splitlines()
    return json.loads(modules), [json.loads(line) for line in lines]


def test_cli_loads_the_network_only_for_a_file_the_classifier_counts(tmp_path):
    t = np.arange(1500) / 50.0
    rows = ["time_s,acc_x,acc_y,acc_z"] + [
        f"{s:.2f},{np.sin(2 * np.pi * 2 * s):.4f},{np.cos(2 * np.pi * 2 * s):.4f},9.81" for s in t
    ]
    path = tmp_path / "rope.csv"
    path.write_text("\n".join(rows) + "\n")
    modules, lines = _cli_modules("count", "--format", "csv", "--exercise", "jump_rope", str(path))
    assert modules == {"tensorflow": False, "onnxruntime": False}
    assert lines[0]["total_reps"] > 0
    assert {s["method"] for s in lines[0]["sets"]} == {"peaks"}


@pytest.mark.skipif(not EXERMOTE.is_dir(), reason=f"the Exermote recordings are not at {EXERMOTE}")
def test_cli_counts_an_exermote_file_with_the_runtime_without_tensorflow(tmp_path):
    path = sorted(EXERMOTE.glob("*.csv"))[0]
    modules, lines = _cli_modules("count", str(path))
    assert modules == {"tensorflow": False, "onnxruntime": True}
    assert {s["method"] for s in lines[0]["sets"]} == {"classifier"}
    assert lines[0]["model_version"] == read_spec(DEFAULT_MODEL_PATH).version


def test_cli_with_a_model_that_is_not_one_exits_2_naming_the_option(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    proc = subprocess.run(
        [sys.executable, "-m", "inference", "count", "--model", str(bad), str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "--model" in proc.stderr
    assert "Traceback" not in proc.stderr
