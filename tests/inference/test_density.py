"""Tests of the learned counter's serving path (inference.density) and its routing in the pipeline.

The network is replaced by a transparent one (density from the movement's energy) so that each
step from density to sets, exemplar scale and route is checked against a known answer; the
shipped counter file is tested where it is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from inference import density
from inference.density import CounterSpec, DensityCounter, Exemplar, density_sets, run_chunked
from inference.io import Recording
from inference.pipeline import count_recording
from inference.results import CountingError
from tests.inference.test_generic import _arm as arm_samples

ROOT = Path(__file__).resolve().parents[2]


def _arm(bursts: list[tuple[float, int]], period: float = 2.0, rate: float = 50.0, seed: int = 0) -> Recording:
    """A wrist swinging one cycle per ``period`` s in each (rest before, cycles) burst; 5 s still at the end."""
    t, acc = arm_samples(rate, bursts, period, noise=0.02, seed=seed)
    return Recording(time_s=t, samples=acc, channels=("acc_x", "acc_y", "acc_z"), source_format="csv")


class EnergyNetwork:
    """Density proportional to the high-passed magnitude's energy, normalised so that one cycle of
    :func:`_arm` at ``period`` s sums to ``per_cycle``."""

    def __init__(self, per_cycle: float = 1.0, period: float = 2.0) -> None:
        rec = _arm([(0.0, 20)], period=period)
        x = density.counter_input(rec, CounterSpec(version="t"))
        self.k = per_cycle / (float(self.energy(x[None]).sum()) / 20)

    @staticmethod
    def energy(batch: np.ndarray) -> np.ndarray:
        # the axes times the level they were divided by: the high-passed acceleration itself
        return np.sum((batch[..., :3] * np.exp(batch[..., 5:6])) ** 2, axis=-1)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return (self.k * self.energy(batch)).astype(np.float32)


def _counter(per_cycle: float = 1.0, **routing) -> DensityCounter:
    spec = CounterSpec(version="energy-test", routing=routing)
    return DensityCounter.from_network(EnergyNetwork(per_cycle), spec)


def test_density_sets_cut_bursts_and_count_their_sum():
    fs = density.GRID_HZ
    d = np.zeros(int(120 * fs))
    d[int(10 * fs) : int(30 * fs)] = 8 / (20 * fs)  # 8 reps in 20 s
    d[int(60 * fs) : int(90 * fs)] = 12 / (30 * fs)  # 12 reps in 30 s, after 30 s of rest
    d[int(100 * fs) : int(102 * fs)] = 1.5 / (2 * fs)  # a gesture: under min_set_reps
    sets = density_sets(d, CounterSpec(version="t"), exercise="push_up")
    assert [s.reps for s in sets] == [8, 12]
    assert sets[0].start_s == pytest.approx(10.0, abs=1.6)
    assert sets[1].end_s == pytest.approx(90.0, abs=1.6)
    assert all(s.method == "learned" and s.exercise == "push_up" for s in sets)
    reps = sets[1].repetitions
    assert all(a.end_s <= b.start_s + 1e-9 for a, b in pairwise(reps))


def test_rest_has_no_sets():
    assert density_sets(np.full(int(600 * density.GRID_HZ), 0.001), CounterSpec(version="t"), exercise="x") == []


def test_chunked_run_equals_one_run():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(density.CHUNK * 2 + 777, density.N_FEATURES)).astype(np.float32)

    def smooth(batch):  # receptive field 61 steps < CONTEXT
        kernel = np.ones(61) / 61
        return np.convolve(batch[0, :, 0], kernel, mode="same")[None] ** 2

    np.testing.assert_allclose(run_chunked(smooth, x), smooth(x[None])[0], rtol=1e-6, atol=1e-9)


def test_features_do_not_depend_on_orientation_for_the_invariant_channels():
    rec = _arm([(2.0, 6)])
    acc = density.acceleration(rec)
    rot = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
    a = density.features(acc, 50.0)
    b = density.features(acc @ rot.T, 50.0)
    np.testing.assert_allclose(a[:, 3:], b[:, 3:], atol=1e-5)


def test_counter_counts_the_cycles_and_an_exemplar_sets_what_one_repetition_is():
    rec = _arm([(5.0, 10), (20.0, 6)])
    counter = _counter(per_cycle=2.0)  # a network that counts every cycle twice
    assert [s.reps for s in counter.count(rec)] == [20, 12]
    exemplar = Exemplar(_arm([(1.0, 5)], seed=3), reps=5)
    counted = counter.count(rec, exemplar=exemplar)
    assert [s.reps for s in counted] == [10, 6]
    assert all(s.used_exemplar for s in counted)


def test_exemplar_scale_is_bounded():
    counter = _counter(per_cycle=1.0)
    wrong = Exemplar(_arm([(1.0, 5)]), reps=150)  # claims 150 reps in 5 cycles (16 s)
    assert counter.exemplar_scale(wrong) == density.EXEMPLAR_SCALE_BOUNDS[1]


@pytest.mark.parametrize(
    ("reps", "seconds", "message"),
    [(0, 10.0, "1 to 500"), (501, 100.0, "1 to 500"), (5, 0.5, "lasts"), (200, 10.0, "more than 10 a second")],
)
def test_exemplar_bounds(reps, seconds, message):
    t = np.arange(0, seconds, 0.02)
    rec = Recording(time_s=t, samples=np.zeros((t.size, 3), np.float32), channels=("acc_x", "acc_y", "acc_z"),
                    source_format="csv")  # fmt: skip
    with pytest.raises(ValueError, match=message):
        Exemplar(rec, reps)


def test_exemplar_from_range_keeps_only_the_range():
    rec = _arm([(5.0, 10)])
    part = Exemplar.from_range(rec, 5.0, 25.0, 10).recording
    assert part.time_s[0] >= 5.0
    assert part.time_s[-1] <= 25.0
    with pytest.raises(ValueError, match="fewer than two samples"):
        Exemplar.from_range(rec, 1000.0, 1001.0, 3)


def test_learned_counter_needs_three_accelerometer_axes():
    t = np.arange(0, 30, 0.02)
    rec = Recording(time_s=t, samples=np.zeros((t.size, 3), np.float32), channels=("gyro_x", "gyro_y", "gyro_z"),
                    source_format="csv")  # fmt: skip
    with pytest.raises(CountingError, match="three-axis accelerometer"):
        _counter().count(rec)
    # the pipeline falls back to the generic counter, which reads the gyroscope
    assert count_recording(rec, model=None, exercise="push_up", counter=_counter()).model_version is None


@pytest.mark.parametrize(
    ("route", "method", "version"), [("learned", "learned", "energy-test"), ("hybrid", "learned", "energy-test"),
                                     ("generic", "peaks", None)],
)  # fmt: skip
def test_pipeline_follows_the_counters_routing(route, method, version):
    rec = _arm([(5.0, 10), (20.0, 6)])
    counter = _counter(exercise={"plain": route, "exemplar": route})
    result = count_recording(rec, model=None, exercise="push_up", counter=counter)
    assert result.model_version == version
    assert {s.method for s in result.sets} == {method}
    assert result.total_reps in (15, 16, 17)
    # no counter: the generic counter, as before
    assert count_recording(rec, model=None, exercise="push_up").model_version is None


def test_hybrid_counts_the_density_inside_the_generic_sets():
    rec = _arm([(5.0, 10), (20.0, 6)])
    counter = _counter(per_cycle=2.0, exercise={"plain": "hybrid", "exemplar": "hybrid"})
    assert count_recording(rec, model=None, exercise="push_up", counter=counter).total_reps in (31, 32, 33)
    exemplar = Exemplar(_arm([(1.0, 5)], seed=3), reps=5)
    result = count_recording(rec, model=None, exercise="push_up", counter=counter, exemplar=exemplar)
    assert [s.reps for s in result.sets] == [10, 6]
    assert all(s.used_exemplar for s in result.sets)


def _csv(path: Path, rec: Recording) -> Path:
    rows = ["time_s,acc_x,acc_y,acc_z"] + [
        f"{t:.3f},{a:.4f},{b:.4f},{c:.4f}" for t, (a, b, c) in zip(rec.time_s, rec.samples, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_refuses_a_counter_it_cannot_read(tmp_path):
    query = _csv(tmp_path / "q.csv", _arm([(2.0, 5)]))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08not a model")
    run = subprocess.run(
        [sys.executable, "-m", "inference", "count", "--format", "csv", "--counter", str(bad), str(query)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert "--counter" in run.stderr


@pytest.mark.parametrize("value", ["x.csv", "x.csv:0", "x.csv:-3", ":5", "x.csv:five"])
def test_cli_refuses_a_malformed_exemplar(tmp_path, value):
    query = _csv(tmp_path / "q.csv", _arm([(2.0, 5)]))
    run = subprocess.run(
        [sys.executable, "-m", "inference", "count", "--format", "csv", "--exemplar", value, str(query)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert "--exemplar" in run.stderr


def test_cli_refuses_an_exemplar_it_cannot_read(tmp_path):
    query = _csv(tmp_path / "q.csv", _arm([(2.0, 5)]))
    run = subprocess.run(
        [sys.executable, "-m", "inference", "count", "--format", "csv", "--exemplar", f"{tmp_path / 'none.csv'}:5",
         str(query)], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert "none.csv" in run.stderr


UNTRAINED = ROOT / "tests" / "fixtures" / "counter_untrained.onnx"


def test_cli_exemplar_changes_the_count(tmp_path):
    """The exemplar sets what one repetition is: told its 8 cycles are 8 repetitions, the counter
    counts the query's 24 cycles; told they are 16, twice that (the untrained test counter, which
    routes every group to the learned counter and counts 2-3 per cycle on its own)."""
    query = _csv(tmp_path / "q.csv", _arm([(5.0, 12), (20.0, 12)], seed=5))
    exemplar = _csv(tmp_path / "e.csv", _arm([(1.0, 8)], seed=6))

    def run(*extra):
        out = subprocess.run(
            [sys.executable, "-m", "inference", "count", "--format", "csv", "--exercise", "push_up",
             "--counter", str(UNTRAINED), *extra, str(query)], capture_output=True, text=True, cwd=ROOT,
            timeout=120, check=True,
        )  # fmt: skip
        return json.loads(out.stdout)

    plain = run()
    true = run("--exemplar", f"{exemplar}:8")
    doubled = run("--exemplar", f"{exemplar}:16")
    assert plain["model_version"] == true["model_version"] == doubled["model_version"] == "untrained-test"
    assert abs(true["total_reps"] - 24) <= 5, true
    assert abs(plain["total_reps"] - 24) > 5, plain
    assert doubled["total_reps"] == pytest.approx(2 * true["total_reps"], abs=3)
