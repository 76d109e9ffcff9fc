"""The inputs of ``bench/hostile_uploads.py`` are what they claim, and the upload checks refuse
each with the words the benchmark expects (the 20 MB bomb: its size only, parsing takes seconds)."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from fitness.workouts.services.uploads import check_countable, parse_upload
from inference.io import RecordingError

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import hostile_uploads as hostile  # noqa: E402

pytestmark = pytest.mark.django_db


def refusal(data: bytes, fmt: str) -> str:
    with pytest.raises(RecordingError) as caught:
        check_countable(recording=parse_upload(raw=data, fmt=fmt), exercise_hint=None)
    return caught.value.message


def test_each_hostile_input_is_refused_with_the_expected_words():
    files = hostile.benchlib.exermote_files()
    if not files:
        pytest.skip("../shared/data/exermote is absent")
    for h in hostile.hostile_inputs(files[0], 20 << 20):
        if h.recording.name.startswith("bomb: 20 MB"):
            continue
        message = refusal(h.recording.data, h.recording.fmt)
        assert any(word in message for word in h.expect), (h.recording.name, message)


def test_the_inputs_have_their_stated_sizes():
    limit = 20 << 20
    bomb = hostile.json_bomb(limit)
    assert 19_900_000 < len(bomb) <= min(20_000_000, limit)
    assert bomb.startswith(b'{"sample_rate_hz":1000,"channels":["acc_x"],"samples":[[0.0],[0.1],')
    assert len(hostile.json_bomb(1_000_000)) <= 1_000_000
    packed = hostile.gzip_bomb()
    assert len(packed) < 3 << 20
    assert len(gzip.decompress(packed)) > 1000 << 20
    assert b"[" * 100_000 + b"]" in hostile.deep_json()
    header = hostile.padded_header().split(b"\n", 1)[0]
    assert len(header) > 1 << 20
    assert max(len(c) for c in hostile.huge_cell().split(b",")) >= 10 << 20


def test_the_cara_input_is_100_hz_but_for_its_two_day_gap():
    rows = [r.split(",") for r in hostile.cara_with_gap().decode().splitlines()]
    assert {len(r) for r in rows} == {7}
    stamps = [int(r[0]) for r in rows]
    steps = list(np.diff(stamps))
    assert all(8 <= s <= 12 for s in steps[:-1])
    assert steps[-1] > 2 * 86400 * 1000


def test_the_verdicts():
    h = hostile.Hostile(hostile.Recording("x", b"", "", None, fmt="csv"), ("jump",))
    outcome = hostile.Outcome
    assert hostile.judge(outcome("x", 400, 0.1, '{"file": ["timestamps jump by 9 s"]}', 40), h) is None
    assert "without naming" in hostile.judge(outcome("x", 400, 0.1, '{"file": ["bad"]}', 20), h)
    assert "echoed" in hostile.judge(outcome("x", 400, 0.1, '{"file": ["jump"]}', 5000), h)
    assert "answered 500" in hostile.judge(outcome("x", 500, 0.1, "", 0), h)
    assert "answered 0" in hostile.judge(outcome("x", 0, 60.0), h)
    assert hostile.judge(outcome("x", 202, 1.0, final="done"), h) is None
    assert hostile.judge(outcome("x", 202, 1.0, final="failed", error="timestamps jump"), h) is None
    assert "accepted, then failed" in hostile.judge(outcome("x", 202, 1.0, final="failed"), h)
    assert "timeout" in hostile.judge(outcome("x", 202, 1.0, final="timeout"), h)


def test_the_latency_rule():
    allowed, problems = hostile.judge_latency([1.0] * 5, [5.9] * 5)
    assert allowed == pytest.approx(6.0)
    assert problems == []
    assert "p95 under attack" in hostile.judge_latency([1.0] * 5, [6.5] * 5)[1][0]
    assert "too few" in hostile.judge_latency([1.0] * 2, [1.0] * 5)[1][0]
