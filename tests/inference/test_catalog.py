import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from inference import catalog
from inference.io import EXERMOTE_CHANNELS
from inference.model import DEFAULT_MODEL_PATH, read_spec
from inference.pipeline import choose_method
from tests.inference.test_pipeline import synthetic

ROOT = Path(__file__).resolve().parents[2]

#: A few ids checked against the Jetpack client's ExerciseSegment constants (connect-client 1.1).
KNOWN_HEALTH_CONNECT_TYPES = {
    "arm_curl": 1,
    "bench_press": 5,
    "burpee": 9,
    "deadlift": 11,
    "jumping_jack": 27,
    "jump_rope": 28,
    "lat_pull_down": 31,
    "lunge": 36,
    "pull_up": 42,
    "sit_up": 50,
    "squat": 51,
    "weightlifting": 65,
}


@pytest.fixture(scope="module")
def spec():
    return read_spec(DEFAULT_MODEL_PATH)


def test_ids_are_unique_snake_case_and_keyed_by_themselves():
    ids = [e.id for e in catalog.EXERCISES.values()]
    assert len(ids) == len(set(ids)) == len(catalog.EXERCISES)
    assert all(key == e.id for key, e in catalog.EXERCISES.items())
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", i) for i in ids), ids
    names = [e.name for e in catalog.EXERCISES.values()]
    assert len(names) == len(set(names))


def test_known_health_connect_type_ids():
    for exercise, type_id in KNOWN_HEALTH_CONNECT_TYPES.items():
        assert catalog.EXERCISES[exercise].health_connect_type == type_id, exercise
        assert catalog.health_connect_type(exercise) == type_id


def test_health_connect_types_are_distinct_and_the_rest_export_as_other_workout():
    in_hc = [e for e in catalog.EXERCISES.values() if e.in_health_connect and e.id != "unknown"]
    types = [e.health_connect_type for e in in_hc]
    assert len(types) == len(set(types))
    assert all(1 <= t <= 67 and t not in {0, 38, 39, 41, 44} for t in types)  # unknown/other/pause/plank/rest
    others = [e for e in catalog.EXERCISES.values() if not e.in_health_connect]
    assert {e.health_connect_type for e in others} == {catalog.HEALTH_CONNECT_OTHER_WORKOUT}
    assert {"push_up", "dip", "chin_up"} <= {e.id for e in others}


def test_unknown_is_valid_and_maps_to_the_unknown_segment_type():
    assert catalog.is_known("unknown")
    assert catalog.health_connect_type("unknown") == catalog.HEALTH_CONNECT_UNKNOWN == 0
    assert catalog.health_connect_type("not_an_exercise") == 0
    assert not catalog.is_known("Squat")
    assert not catalog.is_known("")


def test_the_project_s_exercises_and_the_model_s_are_in_the_catalog(spec):
    assert {"burpee", "squat", "sit_up", "jump_rope", "jumping_jack"} <= set(catalog.EXERCISES)
    assert set(spec.exercises) <= set(catalog.EXERCISES)


def test_method_is_classifier_for_the_model_s_exercises_only(spec):
    methods = {e["id"]: e["method"] for e in catalog.catalog_with_methods(spec)}
    assert {i for i, m in methods.items() if m == "classifier"} == {*spec.exercises, "unknown"}
    assert methods["jump_rope"] == methods["bench_press"] == "generic"
    assert set(catalog.catalog_with_methods(None)[0]) == {"id", "name", "method", "health_connect_type"}
    assert {e["method"] for e in catalog.catalog_with_methods(None)} == {"generic"}


def test_a_model_with_phases_for_jump_rope_still_leaves_it_to_the_generic_counter(spec):
    labels = (*spec.labels, "jump_rope.first_half", "jump_rope.second_half")
    assert catalog.counting_method("jump_rope", replace(spec, labels=labels, scaling=spec.scaling)) == "generic"


@pytest.mark.parametrize("hint", [None, "unknown", "squat", "bench_press", "jump_rope", "push_up"])
def test_the_pipeline_chooses_what_the_catalog_lists(spec, hint):
    listed = catalog.counting_method(hint, spec)
    chosen = choose_method(synthetic(EXERMOTE_CHANNELS), spec, hint)
    assert (chosen == "classifier") == (listed == "classifier")
    # without the model's channels the generic counter counts whatever the hint
    assert choose_method(synthetic(("acc_x", "acc_y", "acc_z")), spec, hint) != "classifier"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inference", *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_refuses_an_exercise_outside_the_catalog_with_status_2(tmp_path):
    path = tmp_path / "rec.csv"
    path.write_text("time_s,acc_x,acc_y,acc_z\n0,0,0,9.8\n0.1,0,0,9.8\n")
    proc = _cli("count", "--format", "csv", "--exercise", "pushups", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "'pushups' is not in the exercise catalog" in proc.stderr
    assert "python -m inference exercises" in proc.stderr


def test_cli_lists_the_catalog():
    proc = _cli("exercises")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in rows] == [e["id"] for e in catalog.catalog_with_methods(None)]
    assert {r["id"]: r["method"] for r in rows}["squat"] == "classifier"
    assert {r["id"]: r["health_connect_type"] for r in rows}["lat_pull_down"] == 31
