"""Model uploads that ask for too much memory (issue 29, item 3): refused before anything is built,
or by a child process under a memory limit; the validating process never grows.

Every check that could build a bomb runs in a process with its own RLIMIT_AS, so these tests
cannot eat the machine even without the fixes.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fitness.mlmodels.validation import validate_model_file
from inference.model import ModelFileError
from inference.model_check import run_model_check
from tests.inference.test_network_size import first_conv_name, first_member, rewrite_config

# The model check itself is under test: every check runs its child (no result reused).
pytestmark = pytest.mark.real_model_check


ROOT = Path(__file__).resolve().parents[2]


def with_filters(dst: Path, filters: int) -> Path:
    """The shipped default.keras with its first Conv1D set to ``filters`` (weights file unchanged)."""

    def change(config):
        first_member(config)[1]["config"]["filters"] = filters

    return rewrite_config(dst, change)


def run_capped(script: str, *, memory_mb: int, timeout_s: float = 300) -> dict:
    """Run ``script`` (Django set up) in a fresh interpreter under RLIMIT_AS; its last stdout line is JSON.

    The cap is the soft limit: the model check's own child sets its limit afresh."""
    prelude = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({memory_mb << 20}, resource.RLIM_INFINITY))
        import json, sys, time
        import django
        django.setup()
    """)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fitness.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": "sqlite:///:memory:",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CELERY_BROKER_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout_s,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stderr[-2000:]
    assert lines, done.stderr[-2000:]
    return json.loads(lines[-1])


def test_two_million_filters_are_a_quick_400_reason_and_tensorflow_is_never_loaded(tmp_path):
    """The issue's file: the web process went from 542 to 2,433 MiB before its 400. Now the size is
    read from config.json: refused in milliseconds, naming the layer, without importing TensorFlow.
    Under a 1.5 GiB cap, the old in-process build would fail on memory instead."""
    bomb = with_filters(tmp_path / "bomb.keras", 2_000_000)
    answer = run_capped(
        f"""
        from fitness.mlmodels.validation import validate_model_file
        from inference.model import ModelFileError
        started = time.monotonic()
        try:
            validate_model_file(open({str(bomb)!r}, "rb").read())
            error = None
        except ModelFileError as exc:
            error = str(exc)
        print(json.dumps({{"error": error, "seconds": time.monotonic() - started,
                           "tensorflow": "tensorflow" in sys.modules}}))
        """,
        memory_mb=1536,
    )
    assert answer["error"] is not None
    assert "parameters; at most 10,000,000" in answer["error"]
    assert f"{first_conv_name()} (Conv1D)" in answer["error"]
    assert not answer["tensorflow"]
    assert answer["seconds"] < 10  # generous; measured about 20 ms


def test_a_network_past_the_static_bounds_hits_the_childs_memory_limit(tmp_path):
    """A bomb the static bounds would have refused, given straight to the child: the child, not the
    caller, runs out of memory, and the answer names the limit (20,000,000 filters ask for 5.2 GB)."""
    (tmp_path / "check").mkdir()
    bomb = with_filters(tmp_path / "check" / "model.keras", 20_000_000)
    with pytest.raises(ModelFileError, match="the network exceeds the memory limit of 3072 MiB"):
        run_model_check(bomb, memory_limit_mb=3072, timeout_s=300)


def test_the_memory_limit_is_a_setting_and_a_model_beyond_it_is_invalid_with_the_reason(model_files, settings):
    """A small valid model refused because the child's limit is set too low for TensorFlow itself:
    the refusal names the limit instead of crashing or growing the caller."""
    settings.FITNESS_MODEL_CHECK_MEMORY_MB = 200
    with pytest.raises(ModelFileError, match="memory limit of 200 MiB"):
        validate_model_file(model_files["a"].data)


def test_a_killed_or_crashed_check_is_invalid_with_a_reason(tmp_path, monkeypatch):
    """A child that dies on a signal (here the interpreter is replaced by one that segfaults) is
    reported with the signal's name."""
    from inference import model_check

    (tmp_path / "check").mkdir()
    crash = tmp_path / "crash.sh"
    crash.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crash.chmod(0o755)
    monkeypatch.setattr(model_check.sys, "executable", str(crash))
    model = tmp_path / "check" / "model.keras"
    model.write_bytes(b"PK")
    with pytest.raises(ModelFileError, match=r"crashed its process \(SIGSEGV\).*memory limit of 512 MiB"):
        run_model_check(model, memory_limit_mb=512, timeout_s=60)


def test_the_shipped_model_passes_in_the_child_and_the_caller_stays_small(tmp_path):
    """The shipped model is accepted under the default limit; the validating process never imports
    TensorFlow (the child does), so its memory stays where it was."""
    from inference.model import DEFAULT_KERAS_PATH

    answer = run_capped(
        f"""
        import resource
        from fitness.mlmodels.validation import validate_model_file
        validated = validate_model_file(open({str(DEFAULT_KERAS_PATH)!r}, "rb").read())
        print(json.dumps({{"version": validated.version, "tensorflow": "tensorflow" in sys.modules,
                           "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}}))
        """,
        memory_mb=2048,
    )
    assert answer["version"].startswith("phase-")
    assert not answer["tensorflow"]
