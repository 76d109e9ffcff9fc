import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference.io import EXERMOTE_CHANNELS, Recording, read_recording
from inference.model import DEFAULT_MODEL_PATH, read_spec
from inference.pipeline import check_countable, choose_method, count_recording, get_default_model
from inference.results import CountingError
from inference.scoring import true_sets

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model():
    return get_default_model()


def synthetic(channels, seconds=30.0, rate=10.0):
    t = np.arange(0, seconds, 1 / rate)
    x = np.stack([np.sin(2 * np.pi * 0.5 * t + i) for i in range(len(channels))], axis=1).astype(np.float32)
    return Recording(time_s=t, samples=x, channels=tuple(channels), source_format="csv")


@pytest.mark.parametrize(
    ("channels", "hint", "method"),
    [
        (EXERMOTE_CHANNELS, None, "classifier"),
        (EXERMOTE_CHANNELS, "squat", "classifier"),
        (EXERMOTE_CHANNELS, "unknown", "classifier"),
        (EXERMOTE_CHANNELS, "jump_rope", "peaks"),
        (EXERMOTE_CHANNELS, "jumping_jack", "peaks"),
        (("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"), None, "peaks"),
        (("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"), "squat", "peaks"),
    ],
)
def test_choose_method(channels, hint, method):
    # the spec alone decides (what a web process reads without loading the network)
    assert choose_method(synthetic(channels), read_spec(DEFAULT_MODEL_PATH), hint) == method


def test_without_a_model_every_recording_goes_to_the_peak_counter():
    assert choose_method(synthetic(EXERMOTE_CHANNELS), None, None) == "peaks"


def test_check_countable_names_the_method_or_what_is_missing():
    spec = read_spec(DEFAULT_MODEL_PATH)
    assert check_countable(synthetic(EXERMOTE_CHANNELS), spec, None) == "classifier"
    assert check_countable(synthetic(("acc_x", "acc_y", "acc_z")), spec, "squat") == "peaks"
    with pytest.raises(CountingError, match="lacks the channels"):
        check_countable(synthetic(("heart_rate",)), spec, None)


def test_check_countable_refuses_a_recording_shorter_than_a_window_model_s_window():
    from dataclasses import replace

    spec = replace(read_spec(DEFAULT_MODEL_PATH), architecture="window", window=40)
    assert spec.min_duration_s == pytest.approx(3.9)
    with pytest.raises(CountingError, match=r"needs at least 3\.9 s"):
        check_countable(synthetic(EXERMOTE_CHANNELS, seconds=2.5), spec, None)
    assert check_countable(synthetic(EXERMOTE_CHANNELS, seconds=2.5), replace(spec, architecture="sequence"), None)


def test_classifier_result_names_the_model_version(model):
    result = count_recording(synthetic(EXERMOTE_CHANNELS), model=model)
    assert result.model_version == model.spec.version
    assert all(s.method == "classifier" for s in result.sets)


def test_real_session_counts_match_the_labels(model, exermote_files):
    # The shipped model was trained on these athletes: this checks the wiring, not
    # generalisation (that is measured by `python -m inference.lab evaluate`, LOSO).
    rec = read_recording(exermote_files[3], "exermote")
    result = count_recording(rec, model=model)
    truth = true_sets(np.asarray(rec.labels), rec.annotations["set_break"], 10.0)
    assert len(result.sets) == len(truth)
    for counted, expected in zip(result.sets, truth, strict=True):
        assert counted.exercise == expected["exercise"]
        assert abs(counted.reps - expected["reps"]) <= 1
        assert abs(counted.start_s - expected["start_s"]) < 5
        for rep in counted.repetitions:
            assert 0 <= rep.start_s < rep.end_s <= rec.duration_s + 0.1


def test_cli_count_prints_one_json_line_per_file(exermote_files):
    files = [str(f) for f in exermote_files[:2]]
    proc = subprocess.run(
        [sys.executable, "-m", "inference", "count", "--format", "exermote", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["file"] for line in lines] == files
    for line in lines:
        assert set(line) >= {"file", "total_reps", "model_version", "sets"}
        assert line["total_reps"] == sum(s["reps"] for s in line["sets"]) > 0
        assert {s["method"] for s in line["sets"]} == {"classifier"}
        assert all(set(s) >= {"exercise", "reps", "start_s", "end_s", "method"} for s in line["sets"])
