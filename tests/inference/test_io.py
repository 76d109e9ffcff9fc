import json

import numpy as np
import pytest

from inference.io import EXERMOTE_CHANNELS, RecordingError, exermote_phase, read_recording


def canonical_csv(n=50, rate=10.0, channels=("user_acc_x", "gyro_z")):
    rows = ["time_s," + ",".join(channels)]
    rows += [f"{i / rate:.3f}," + ",".join(f"{np.sin(i / 5 + j):.4f}" for j in range(len(channels))) for i in range(n)]
    return "\n".join(rows).encode()


def test_canonical_csv_reads_channels_and_time():
    rec = read_recording(canonical_csv(), "csv")
    assert rec.channels == ("user_acc_x", "gyro_z")
    assert rec.samples.shape == (50, 2)
    assert rec.samples.dtype == np.float32
    assert rec.time_s[0] == 0.0
    assert rec.sample_rate_hz == pytest.approx(10.0)


def test_canonical_json_with_sample_rate_and_time_s():
    samples = [[float(i), float(-i)] for i in range(50)]
    rec = read_recording(
        json.dumps({"sample_rate_hz": 20, "channels": ["acc_x", "acc_y"], "samples": samples}).encode(), "json"
    )
    assert rec.duration_s == pytest.approx(49 / 20)
    times = [1000 + i * 0.05 for i in range(50)]
    rec2 = read_recording(
        json.dumps({"time_s": times, "channels": ["acc_x", "acc_y"], "samples": samples}).encode(), "json"
    )
    np.testing.assert_allclose(rec2.time_s, rec.time_s, atol=1e-9)


def test_json_nulls_are_repaired_by_interpolation():
    samples = [[float(i)] for i in range(40)]
    samples[10] = [None]
    rec = read_recording(json.dumps({"sample_rate_hz": 10, "channels": ["acc_x"], "samples": samples}).encode(), "json")
    assert rec.samples[10, 0] == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("payload", "fmt", "message"),
    [
        (b"", "csv", "empty"),
        (b"\x00\x01\x02garbage", "csv", "binary"),
        (b"time_s,acc_x\n", "csv", "samples"),
        (b"time_s;acc_x\n0;1\n0.1;2\n", "csv", "delimiter"),
        (canonical_csv().replace(b"0.100,", b"abc,", 1), "csv", "non-numeric"),
        (b"time_s,acc_x\n" + b"\n".join(f"{i / 10},1".encode() for i in range(5)), "csv", "samples"),
        (b"time_s,acc_x\n" + b"\n".join(f"{(i % 20) / 10},1".encode() for i in range(40)), "csv", "not increasing"),
        (b"time_s,acc_x\n" + b"\n".join(f"{i * 1e-5},1".encode() for i in range(400000)[:40]), "csv", "lasts"),
        (b"time_s,acc_x\n" + b"\n".join(f"{i / 10},inf".encode() for i in range(40)), "csv", "infinite"),
        (b"time_s,acc_x\n" + b"\n".join(f"{i / 10},".encode() for i in range(40)), "csv", "missing"),
        (b"time_s,foo\n" + b"\n".join(f"{i / 10},1".encode() for i in range(40)), "csv", "unknown channels"),
        (b"[1, 2]", "json", "object"),
        (b"{not json", "json", "invalid JSON"),
        (json.dumps({"channels": ["acc_x"], "samples": [[1]] * 40}).encode(), "json", "sample_rate_hz"),
        (json.dumps({"sample_rate_hz": 1e6, "channels": ["acc_x"], "samples": [[1]] * 40}).encode(), "json", "outside"),
        (
            json.dumps({"sample_rate_hz": 10, "channels": ["acc_x"], "samples": [["a"]] * 40}).encode(),
            "json",
            "numbers",
        ),
        (
            json.dumps({"sample_rate_hz": 10, "channels": ["acc_x"], "samples": [[1, 2]] * 40}).encode(),
            "json",
            "1 numbers",
        ),
        (b"1,2,3\n4,5,6\n", "cara", "7 comma-separated"),
        (b"a,b\n1,2\n", "exermote", "not an Exermote CSV"),
        ("time_s,acc_x\n0,é".encode("latin-1"), "csv", "UTF-8"),
    ],
)
def test_bad_input_raises_a_named_error(payload, fmt, message):
    with pytest.raises(RecordingError, match=message) as info:
        read_recording(payload, fmt)
    assert info.value.field == "file"


def test_unknown_format_names_the_format_field():
    with pytest.raises(RecordingError) as info:
        read_recording(canonical_csv(), "xml")
    assert info.value.field == "format"


def test_exermote_phase_mapping():
    assert exermote_phase("setBreak", "setBreak") == "break"
    assert exermote_phase("Break", "Break") == "break"
    assert exermote_phase("Situp", "firstHalf") == "sit_up.first_half"
    assert exermote_phase("Burpee", "secondHalf") == "burpee.second_half"


def test_real_exermote_file(exermote_files):
    rec = read_recording(exermote_files[0], "exermote")
    assert rec.channels == EXERMOTE_CHANNELS
    assert rec.n_samples == 3000
    assert rec.sample_rate_hz == pytest.approx(10.0, rel=0.05)
    assert np.isfinite(rec.samples).all()
    # The first row's empty device cells are missing data, repaired from the next row, not zeros.
    assert rec.samples[0, 0] == pytest.approx(rec.samples[1, 0])
    assert rec.samples[0, 0] != 0.0
    assert rec.subject == "1"
    assert set(np.unique(rec.labels)) <= {
        "break", "burpee.first_half", "burpee.second_half", "squat.first_half",
        "squat.second_half", "sit_up.first_half", "sit_up.second_half",
    }  # fmt: skip


def test_real_cara_file(exermote_files):
    cara = exermote_files[0].parents[1] / "cara"
    path = sorted(cara.glob("Skippingrope/P1/session-1/*.csv"))[0]
    rec = read_recording(path, "cara")
    assert rec.channels == ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
    assert 50 < rec.sample_rate_hz < 300
    # gravity included: the magnitude averages about 1 g in m/s^2
    assert np.median(np.linalg.norm(rec.samples[:, :3], axis=1)) == pytest.approx(9.81, rel=0.1)


@pytest.mark.parametrize(
    ("payload", "fmt", "message"),
    [
        (b"Device: xGravity,Device: yGravity\n", "exermote", "not an Exermote CSV"),
        (
            json.dumps({"sample_rate_hz": 10, "channels": ["acc_x"], "samples": [[1]] * 40})
            .replace("1]", "1e999]", 1)
            .encode(),
            "json",
            "beyond the float range",
        ),
        (
            b'{"sample_rate_hz": 10, "channels": ["acc_x"], "samples": [[' + b"1" * 400 + b"]" + b", [1]" * 40 + b"]}",
            "json",
            "float range",
        ),
        (
            b'{"sample_rate_hz": ' + b"1" * 400 + b', "channels": ["acc_x"], "samples": [[1], [2]]}',
            "json",
            "float range",
        ),
        (
            json.dumps({"sample_rate_hz": 10, "channels": ["acc_x"], "samples": [[[1]]] * 40}).encode(),
            "json",
            "numbers",
        ),
        (b"time_s,acc_x,acc_x\n" + b"\n".join(f"{i / 10},1,2".encode() for i in range(40)), "csv", "repeated"),
        ("time_s,acc_x\n0,1\n".encode("utf-16"), "csv", "UTF-16"),
    ],
)
def test_odd_input_found_by_the_fault_matrix_is_named(payload, fmt, message):
    with pytest.raises(RecordingError, match=message):
        read_recording(payload, fmt)


def test_rows_sharing_a_timestamp_are_spread_over_the_tick():
    """A coarse clock (here 0.1 s) stamps two samples alike: spread, not refused, no row lost."""
    rows = b"\n".join(f"{(i // 2) / 10},{i}".encode() for i in range(60))
    rec = read_recording(b"time_s,acc_x\n" + rows, "csv")
    assert rec.n_samples == 60
    assert (np.diff(rec.time_s) > 0).all()
    np.testing.assert_allclose(rec.time_s, np.arange(60) * 0.05, atol=1e-9)
    np.testing.assert_array_equal(rec.samples[:, 0], np.arange(60))


def test_spread_keeps_uneven_ticks_and_the_other_time_checks():
    from inference.io import spread_repeated

    out = spread_repeated(np.array([0.0, 0.0, 0.0, 0.3, 0.4, 0.4]))
    np.testing.assert_allclose(out, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    backwards = b"time_s,acc_x\n" + b"\n".join(f"{(i % 20) / 10},1".encode() for i in range(40))
    with pytest.raises(RecordingError, match="not increasing"):
        read_recording(backwards, "csv")
    one_stamp = b"time_s,acc_x\n" + b"\n".join(b"5.0,1" for _ in range(40))
    with pytest.raises(RecordingError, match="lasts"):
        read_recording(one_stamp, "csv")
    burst = b"time_s,acc_x\n" + b"\n".join(f"{0 if i < 39 else 1e-5},1".encode() for i in range(40))
    with pytest.raises(RecordingError, match=r"lasts|outside"):
        read_recording(burst, "csv")


def _json_doc(samples, **extra) -> bytes:
    return json.dumps({"channels": ["acc_x", "acc_y"], "sample_rate_hz": 100, "samples": samples, **extra}).encode()


def test_json_rows_over_several_batches_keep_every_value():
    """Rows are converted in batches (io._JSON_BATCH_NUMBERS, 32,768 two-channel rows): ints, big
    ints, floats and nulls across batch edges come out as Python's float() gives them."""
    n = 100_003
    rng = np.random.default_rng(0)
    samples = [[float(a), float(b)] for a, b in rng.normal(size=(n, 2))]
    samples[5] = [3, -(2**62) - 1]  # an int64 that float64 rounds
    samples[32_768] = [None, 1e38]
    times = [i / 100 for i in range(n)]
    times[0] = 0  # an integer
    rec = read_recording(_json_doc(samples, time_s=times), "json")
    expected = np.array([[np.nan if v is None else float(v) for v in row] for row in samples]).astype(np.float32)
    known = ~np.isnan(expected)
    np.testing.assert_array_equal(rec.samples[known], expected[known])
    assert np.isfinite(rec.samples).all()  # the null was interpolated
    np.testing.assert_array_equal(rec.time_s, np.array(times, dtype=np.float64))


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ([1.0, "1.5"], "'samples' row 70001 must hold numbers (or null for a missing value), not '1.5'"),
        ([True, 1.0], "'samples' row 70001 must hold numbers (or null for a missing value), not True"),
        ([1.0], "every row of 'samples' must be a list of 2 numbers (row 70001 is not)"),
        (7, "every row of 'samples' must be a list of 2 numbers (row 70001 is not)"),
    ],
)
def test_json_errors_past_the_first_batch_name_the_row(bad_row, message):
    samples = [[0.5, 1.5]] * 70_000 + [bad_row] + [[0.5, 1.5]] * 10
    with pytest.raises(RecordingError) as info:
        read_recording(_json_doc(samples), "json")
    assert str(info.value) == message
    assert info.value.field == "file"


def test_json_without_time_s_or_start_time_is_not_parsed_again_for_them(monkeypatch):
    """The samples pass reads the whole document; an absent optional key costs no further pass."""
    import ijson

    import inference.io

    passes = []
    real_items = ijson.items

    def items(raw, prefix, **kwargs):
        passes.append(prefix)
        return real_items(raw, prefix, **kwargs)

    monkeypatch.setattr(inference.io.ijson, "items", items)
    rec = read_recording(_json_doc([[0.0, 1.0]] * 300), "json")
    assert rec.samples.shape == (300, 2)
    assert passes == ["channels", "samples.item", "sample_rate_hz"]


def test_numeric_columns_parsed_as_floats_equal_the_text_path_bit_for_bit():
    """The readers parse numeric columns with the C parser's float64; the text path
    (``pd.to_numeric``) it replaced must give the same bits on every shared recording."""
    from pathlib import Path

    from inference import io as reader

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    exermote = sorted((shared / "exermote").glob("*.csv"))
    cara = sorted((shared / "cara").glob("*/*/*/*.csv"))[::10]
    if not exermote or not cara:
        pytest.skip(f"the shared recordings are not at {shared}")
    cases = [
        (f, list(reader._EXERMOTE_COLUMNS), {"usecols": lambda c: c in reader._EXERMOTE_COLUMNS}) for f in exermote
    ] + [(f, list(range(7)), {"header": None}) for f in cara]
    for path, columns, kwargs in cases:
        text = path.read_text()
        as_text = reader._numeric(reader._read_table(text, dtype=str, **kwargs), columns)
        as_floats = reader._numeric(reader._read_table_numeric(text, columns, **kwargs), columns)
        assert np.array_equal(as_text, as_floats, equal_nan=True), path.name
