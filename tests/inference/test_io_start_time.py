"""``Recording.start_time``: each format's own clock, where it has one."""

import datetime as dt
import json

import pytest

from inference.io import RecordingError, read_recording


def canonical_rows(n: int = 50) -> str:
    return "time_s,acc_x\n" + "".join(f"{i / 10:.1f},{i % 3}\n" for i in range(n))


def test_canonical_csv_without_a_start_time_line_has_none():
    assert read_recording(canonical_rows().encode(), "csv").start_time is None


def test_canonical_csv_start_time_line_is_an_aware_instant_and_not_a_row():
    rec = read_recording(("# start_time=2024-05-01T18:30:00+02:00\n" + canonical_rows()).encode(), "csv")
    assert rec.start_time == dt.datetime(2024, 5, 1, 16, 30, tzinfo=dt.UTC)
    assert rec.n_samples == 50


def test_canonical_json_start_time_z():
    doc = {"start_time": "2024-05-01T16:30:00Z", "sample_rate_hz": 10, "channels": ["acc_x"], "samples": [[1.0]] * 50}
    rec = read_recording(json.dumps(doc).encode(), "json")
    assert rec.start_time == dt.datetime(2024, 5, 1, 16, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("value", ["2024-05-01T18:30:00", "2024-05-01", "not a time"])
def test_start_time_without_offset_or_unreadable_is_refused(value):
    doc = {"start_time": value, "sample_rate_hz": 10, "channels": ["acc_x"], "samples": [[1.0]] * 50}
    with pytest.raises(RecordingError) as exc:
        read_recording(json.dumps(doc).encode(), "json")
    assert exc.value.field == "file"
    assert "'start_time'" in exc.value.message


def test_cara_first_unix_ms_in_utc():
    rows = "".join(f"{1714580000000 + 10 * i},0.1,0.2,9.8,0,0,0\n" for i in range(300))
    rec = read_recording(rows.encode(), "cara")
    assert rec.start_time == dt.datetime(2024, 5, 1, 16, 13, 20, tzinfo=dt.UTC)


def test_exermote_wall_clock_is_naive():
    header = "timeStampSaved," + ",".join(
        f"Device: {c}" for c in [
            "xGravity", "yGravity", "zGravity", "xAcceleration", "yAcceleration", "zAcceleration",
            "pitch", "roll", "yaw", "xRotationRate", "yRotationRate", "zRotationRate",
        ]
    )  # fmt: skip
    rows = [f"2017-03-30 18:45:{36 + i // 10:02d}:{(i % 10) * 100:03d}," + ",".join(["0.1"] * 12) for i in range(50)]
    rec = read_recording(("\n".join([header, *rows]) + "\n").encode(), "exermote")
    assert rec.start_time == dt.datetime(2017, 3, 30, 18, 45, 36)  # noqa: DTZ001 (naive on purpose)
    assert rec.start_time.tzinfo is None
