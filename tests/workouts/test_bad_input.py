"""Bad input: a matrix of malformed uploads, each answered 4xx naming the field and the
problem, with nothing stored and nothing queued; and the odd-but-valid files that are
repaired or read, not refused."""

from __future__ import annotations

import gzip
import io
import json
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fitness.workouts import tasks
from fitness.workouts.models import SensorSession
from inference.io import EXERMOTE_CHANNELS
from inference.lab.train import MODEL_CHANNELS
from tests.factories import WorkoutFactory

pytestmark = pytest.mark.django_db

SESSIONS = "/api/v1/sessions/"
EXERMOTE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "exermote"
EXERMOTE_FILES = sorted(EXERMOTE_DIR.glob("*.csv")) if EXERMOTE_DIR.is_dir() else []

ACC = ("acc_x", "acc_y", "acc_z")


def csv_rows(n: int = 40, rate: float = 10.0, channels=ACC, value=None, time_fmt: str = "{:.3f}") -> bytes:
    """A canonical CSV; ``value(i, j)`` gives the text of row i, channel j (default: a sine)."""
    value = value or (lambda i, j: f"{np.sin(i / 5 + j):.4f}")
    lines = [",".join(["time_s", *channels])]
    lines += [",".join([time_fmt.format(i / rate), *(value(i, j) for j in range(len(channels)))]) for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def csv_times(times) -> bytes:
    return ("time_s,acc_x,acc_y,acc_z\n" + "".join(f"{t},0.1,0.2,9.8\n" for t in times)).encode()


def json_doc(**overrides) -> bytes:
    doc = {"sample_rate_hz": 10, "channels": list(ACC), "samples": [[0.1 * i, 0.0, 9.8] for i in range(40)]}
    doc.update(overrides)
    return json.dumps(doc).encode()


def exermote_header() -> str:
    columns = [
        "timeStampSaved",
        *(f"Device: {c}" for c in ("xGravity", "yGravity", "zGravity")),
        *(f"Device: {c}" for c in ("xAcceleration", "yAcceleration", "zAcceleration")),
        "Device: pitch",
        "Device: roll",
        "Device: yaw",
        *(f"Device: {c}" for c in ("xRotationRate", "yRotationRate", "zRotationRate")),
    ]
    return ",".join(columns)


def exermote_rows(n: int = 40, stamp=None) -> bytes:
    stamp = stamp or (lambda i: f"2017-03-30 18:50:{i // 10:02d}:{(i % 10) * 100:03d}")
    rows = [exermote_header()]
    rows += [",".join([stamp(i), *(f"{0.01 * ((i + j) % 7):.3f}" for j in range(12))]) for i in range(n)]
    return ("\n".join(rows) + "\n").encode()


def random_bytes(n: int, *, seed: int, high_only: bool = False) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(128, 256) if high_only else rng.randrange(256) for _ in range(n))


@dataclass
class Bad:
    """One malformed upload: the file and form fields, and the answer expected."""

    name: str
    file: bytes | None = None
    fmt: str | None = "csv"
    fields: dict = field(default_factory=dict)
    status: int = 400
    where: str = "file"  # the key of the error body that must name the problem
    message: str = ""  # a regular expression the message must match
    file_as_text: bool = False


BAD_INPUTS = [
    # --- empty, random, binary, encodings ---
    Bad("empty file", b"", message="empty"),
    Bad("only whitespace", b"  \n\t\n  ", message="empty"),
    Bad("random bytes", random_bytes(4096, seed=1), message="binary"),
    Bad("random high bytes (no NUL)", random_bytes(4096, seed=2, high_only=True), message="not UTF-8"),
    Bad("latin-1 text", "time_s,acc_x\n0,é\n".encode("latin-1"), message="not UTF-8"),
    Bad("UTF-16 text", csv_rows().decode().encode("utf-16"), message="binary|UTF-16"),
    Bad("gzip bomb (gzip is not accepted)", gzip.compress(b"0," * (8 << 20)), message="binary"),
    # --- structure of CSV files ---
    Bad("header only", b"time_s,acc_x,acc_y,acc_z\n", message="0 samples; at least 10"),
    Bad("exermote header only", (exermote_header() + "\n").encode(), fmt="exermote", message=r"samples|cannot be read"),
    Bad("cara header line", b"unix_ms,ax,ay,az,gx,gy,gz\n" * 2, fmt="cara", message="non-numeric"),
    Bad("semicolon delimiter", csv_rows().replace(b",", b";"), message="delimiter"),
    Bad("tab delimiter", csv_rows().replace(b",", b"\t"), message="delimiter"),
    Bad("ragged rows", csv_rows() + b"9.9,1,2,3,4,5\n", message="cannot parse CSV"),
    Bad("300 columns", ("time_s," + ",".join(f"c{i}" for i in range(300)) + "\n").encode(), message="at most 256"),
    Bad("no channel columns", b"time_s\n" + b"".join(f"{i / 10}\n".encode() for i in range(40)), message="no channels"),
    Bad("unknown channel", csv_rows(channels=("acc_x", "heart_rate")), message="unknown channels 'heart_rate'"),
    Bad("repeated channel", csv_rows(channels=("acc_x", "acc_x", "acc_z")), message="repeated|unknown channels"),
    # --- values ---
    Bad("text in a numeric column", csv_rows(value=lambda i, j: "abc" if i == 7 else "1.0"), message="non-numeric"),
    Bad("text in the time column", csv_times(["zero", *range(1, 40)]), message="time_s.*non-numeric"),
    Bad("empty time cell", csv_times(["", *(i / 10 for i in range(1, 40))]), message="timestamps"),
    Bad("all-empty column", csv_rows(value=lambda i, j: "" if j == 1 else "1.0"), message="100% of values are missing"),
    Bad(
        "all-NaN column", csv_rows(value=lambda i, j: "NaN" if j == 0 else "1.0"), message="100% of values are missing"
    ),
    Bad("mostly missing (30 %)", csv_rows(value=lambda i, j: "" if i % 3 == 0 else "1.0"), message="missing"),
    Bad("infinite column", csv_rows(value=lambda i, j: "inf" if j == 2 else "1.0"), message="infinite"),
    Bad("number overflowing to infinity", csv_rows(value=lambda i, j: "1e400"), message="infinite"),
    # --- time ---
    Bad("timestamps going back", csv_times([(i % 20) / 10 for i in range(40)]), message="not increasing"),
    Bad("too few samples", csv_rows(n=5), message="at least 10"),
    Bad("shorter than 2 s", csv_rows(n=15), message="lasts 1.40 s"),
    Bad("sample rate 0.1 Hz", csv_rows(rate=0.1), message="outside 1-1000 Hz"),
    Bad("sample rate 10 kHz", csv_rows(n=25_000, rate=10_000.0, time_fmt="{:.5f}"), message="outside 1-1000 Hz"),
    # --- channels the counting method needs ---
    Bad("attitude only", csv_rows(channels=("pitch", "roll", "yaw")), message="lacks the channels.*pitch, roll, yaw"),
    Bad(
        "attitude only, exercise hint",
        csv_rows(channels=("pitch", "roll", "yaw")),
        fields={"exercise": "jump_rope"},
        message="lacks the channels",
    ),
    # --- JSON ---
    Bad("invalid JSON", b'{"channels": ["acc_x"', fmt="json", message="invalid JSON"),
    Bad("JSON list", b"[[1, 2, 3]]", fmt="json", message="must be an object"),
    Bad("JSON string", b'"samples"', fmt="json", message="must be an object"),
    Bad("deeply nested JSON", b"[" * 200_000 + b"]" * 200_000, fmt="json", message="invalid JSON"),
    Bad(
        "deeply nested samples",
        b'{"sample_rate_hz": 10, "channels": ["acc_x"], "samples": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        fmt="json",
        message="invalid JSON",
    ),
    Bad("JSON channels a string", json_doc(channels="acc_x"), fmt="json", message="'channels' must be a list"),
    Bad("JSON samples an object", json_doc(samples={"acc_x": [1]}), fmt="json", message="'samples' must be"),
    Bad("JSON rows of 2 for 3 channels", json_doc(samples=[[1, 2]] * 40), fmt="json", message="3 numbers"),
    Bad("JSON rows of objects", json_doc(samples=[{"acc_x": 1}] * 40), fmt="json", message="3 numbers"),
    Bad("JSON text samples", json_doc(samples=[["1", "2", "3"]] * 40), fmt="json", message="numbers"),
    Bad("JSON boolean samples", json_doc(samples=[[True, False, True]] * 40), fmt="json", message="numbers"),
    Bad("JSON nested rows", json_doc(samples=[[[1], [2], [3]]] * 40), fmt="json", message="table|numbers"),
    Bad("JSON all null column", json_doc(samples=[[None, 1, 2]] * 40), fmt="json", message="100% of values"),
    Bad("JSON huge integer", json_doc(samples=[[10**400, 1, 2]] * 40), fmt="json", message="number|cannot be read"),
    Bad(
        "JSON no rate nor time",
        json_doc(sample_rate_hz=None).replace(b'"sample_rate_hz": null, ', b""),
        fmt="json",
        message="'sample_rate_hz' or 'time_s'",
    ),
    Bad("JSON rate as text", json_doc(sample_rate_hz="50"), fmt="json", message="must be a number"),
    Bad("JSON rate 0", json_doc(sample_rate_hz=0), fmt="json", message="outside 1-1000 Hz"),
    Bad("JSON rate 1 MHz", json_doc(sample_rate_hz=1e6), fmt="json", message="outside 1-1000 Hz"),
    Bad("JSON rate 10**400", json_doc(sample_rate_hz=10**400), fmt="json", message="number|outside|cannot be read"),
    Bad("JSON time_s too short", json_doc(time_s=[0.1 * i for i in range(39)]), fmt="json", message="'time_s'"),
    Bad("JSON time_s as text", json_doc(time_s=[str(i) for i in range(40)]), fmt="json", message="'time_s'"),
    Bad(
        "JSON time_s going back",
        json_doc(time_s=[(i % 20) / 10 for i in range(40)]),
        fmt="json",
        message="not increasing",
    ),
    Bad(
        "JSON time_s huge",
        json_doc(time_s=[10**400 + i for i in range(40)]),
        fmt="json",
        message="'time_s'|cannot be read|float range",
    ),
    # --- other formats ---
    Bad("exermote without its columns", b"a,b\n1,2\n", fmt="exermote", message="not an Exermote CSV"),
    Bad(
        "exermote unreadable time", exermote_rows(stamp=lambda i: "yesterday"), fmt="exermote", message="timeStampSaved"
    ),
    Bad(
        "exermote with text in a device column",
        exermote_rows().replace(b",0.010,", b",abc,", 1),
        fmt="exermote",
        message=r"column 'Device: .*non-numeric value 'abc' in data row 1",
    ),
    Bad("cara with 3 columns", b"1,2,3\n4,5,6\n", fmt="cara", message="7 comma-separated"),
    Bad(
        "cara with text",
        b"".join(f"{1000 + 10 * i},a,1,1,1,1,1\n".encode() for i in range(40)),
        fmt="cara",
        message="non-numeric value 'a'",
    ),
    # --- form fields ---
    Bad("unknown format", csv_rows(), fmt="xlsx", where="format", message="not a valid choice"),
    Bad("no format", csv_rows(), fmt=None, where="format", message="required"),
    Bad("unknown exercise", csv_rows(), fields={"exercise": "no_such"}, where="exercise", message="/exercises/"),
    Bad("client_id not a UUID", csv_rows(), fields={"client_id": "1234"}, where="client_id", message="valid UUID"),
    Bad("unknown workout", csv_rows(), fields={"workout": 987654}, where="workout", message="does not exist"),
    Bad("workout id not a number", csv_rows(), fields={"workout": "abc"}, where="workout", message="Incorrect type"),
    Bad("no file", None, where="file", message="No file was submitted"),
    Bad("file sent as text", csv_rows(), file_as_text=True, where="file", message="not a file"),
]


def upload(client, bad: Bad, **extra):
    data = {**bad.fields, **extra}
    if bad.fmt is not None:
        data["format"] = bad.fmt
    if bad.file is not None:
        data["file"] = bad.file.decode() if bad.file_as_text else SimpleUploadedFile("rec.dat", bad.file, "text/csv")
    return client.post(SESSIONS, data, format="multipart")


@pytest.fixture
def queued(monkeypatch) -> list[str]:
    sent: list[str] = []
    monkeypatch.setattr(tasks.process_session, "delay", sent.append)
    return sent


@pytest.fixture
def nothing_stored(stored_files, queued):
    yield
    assert not SensorSession.objects.exists()
    assert stored_files() == []
    assert queued == []


def test_the_matrix_is_large_and_distinct():
    assert len(BAD_INPUTS) >= 30
    assert len({b.name for b in BAD_INPUTS}) == len(BAD_INPUTS)


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b.name for b in BAD_INPUTS])
def test_bad_upload_is_4xx_naming_field_and_problem_and_stores_nothing(
    api, nothing_stored, django_capture_on_commit_callbacks, bad: Bad
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        resp = upload(api, bad)
    elapsed = time.monotonic() - started
    assert callbacks == []
    assert resp.status_code == bad.status, resp.content[:500]
    body = resp.json()
    assert bad.where in body, body
    messages = body[bad.where]
    text = " ".join(messages) if isinstance(messages, list) else str(messages)
    assert re.search(bad.message, text), f"{text!r} does not match {bad.message!r}"
    assert elapsed < 10, f"answered in {elapsed:.1f} s"


def test_workout_of_another_user_is_refused_like_an_unknown_one(api, other_user, nothing_stored):
    workout = WorkoutFactory(user=other_user)
    resp = upload(api, Bad("theirs", csv_rows()), workout=workout.pk)
    assert resp.status_code == 400
    assert resp.json() == {"workout": [f'Invalid pk "{workout.pk}" - object does not exist.']}


@pytest.mark.parametrize("limit", [2_000, 50_000])
def test_over_the_size_limit_is_413_and_the_limit_is_a_setting(api, settings, nothing_stored, limit):
    settings.FITNESS_MAX_UPLOAD_BYTES = limit
    resp = upload(api, Bad("big", csv_rows(n=limit // 20)))
    assert resp.status_code == 413
    assert f"larger than {limit} bytes" in resp.json()["detail"]


def test_a_file_just_under_the_limit_is_accepted(api, settings, queued):
    data = csv_rows(n=200)
    settings.FITNESS_MAX_UPLOAD_BYTES = len(data)
    assert upload(api, Bad("fits", data)).status_code == 202


# --- odd but valid: repaired or read, not refused ------------------------------------


QUOTED_CSV = b'"time_s","acc_x","acc_y","acc_z"\n' + b"".join(
    f'"{i / 10}","{i % 3}","1","9.8"\n'.encode() for i in range(40)
)


def test_a_few_missing_values_are_repaired(api, queued, django_capture_on_commit_callbacks):
    data = csv_rows(n=60, value=lambda i, j: "" if (i, j) in {(0, 0), (7, 1), (33, 2), (59, 0)} else f"{i % 5}.0")
    with django_capture_on_commit_callbacks(execute=True):
        resp = upload(api, Bad("gaps", data))
    assert resp.status_code == 202, resp.content
    assert resp.json()["n_samples"] == 60
    assert len(queued) == 1


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("byte order mark", b"\xef\xbb\xbf" + csv_rows(), "csv"),
        ("CRLF line ends", csv_rows().replace(b"\n", b"\r\n"), "csv"),
        ("quoted fields", QUOTED_CSV, "csv"),
        ("JSON nulls", json_doc(samples=[[None if i == 5 else 0.1, 0.0, 9.8] for i in range(40)]), "json"),
        ("JSON with time_s", json_doc(time_s=[100 + i / 10 for i in range(40)]), "json"),
        ("repeated coarse timestamps", csv_times([(i // 2) / 10 for i in range(60)]), "csv"),
        ("one accelerometer axis (generic counter)", csv_rows(channels=("acc_z",)), "csv"),
    ],
)
def test_odd_but_valid_files_are_accepted(api, queued, name, data, fmt):
    resp = upload(api, Bad(name, data, fmt=fmt))
    assert resp.status_code == 202, resp.content


def test_short_recording_is_accepted_where_the_peak_counter_counts_it(api, queued):
    """The classifier needs a full window; the peak counter (jump rope) does not."""
    resp = upload(api, Bad("short", csv_rows(n=30, channels=MODEL_CHANNELS)), exercise="jump_rope")
    assert resp.status_code == 202, resp.content


@pytest.mark.skipif(not EXERMOTE_FILES, reason=f"no Exermote recordings at {EXERMOTE_DIR} (shared data absent)")
def test_real_recording_with_its_empty_first_row_is_repaired(api, queued):
    raw = EXERMOTE_FILES[0].read_bytes()
    frame_rows = raw.decode().splitlines()
    resp = upload(api, Bad("real", raw, fmt="exermote"))
    assert resp.status_code == 202, resp.content
    assert resp.json()["n_samples"] == len(frame_rows) - 1
    assert set(EXERMOTE_CHANNELS) <= set(resp.json()["channels"])


def test_reading_a_wide_recording_is_fast(api, queued):
    """A 2.5 MB upload of 100 Hz data is parsed well within a request's time."""
    rows = io.StringIO()
    rows.write("time_s," + ",".join(MODEL_CHANNELS) + "\n")
    for i in range(20_000):
        rows.write(f"{i / 100:.2f}," + ",".join(f"{np.sin(i / 50 + k):.4f}" for k in range(9)) + "\n")
    started = time.monotonic()
    resp = upload(api, Bad("wide", rows.getvalue().encode()))
    assert resp.status_code == 202, resp.content
    assert time.monotonic() - started < 5


def production_model_row(**metadata):
    """A registered production version: its metadata is all the upload check reads."""
    from fitness.mlmodels.models import ModelVersion, Stage
    from inference.model import DEFAULT_MODEL_PATH, read_metadata

    shipped = read_metadata(DEFAULT_MODEL_PATH)
    labels = ["break", "squat.first_half", "squat.second_half"]
    counting = {**shipped["counting"], "min_run_s": {}}
    return ModelVersion.objects.create(
        version="test-model",
        file="models/x.keras",
        checksum="1" * 64,
        size_bytes=1,
        metadata={**shipped, "version": "test-model", "labels": labels, "counting": counting, **metadata},
        stage=Stage.PRODUCTION,
    )


@pytest.mark.parametrize(("window", "samples", "needed"), [(40, 30, "3.9"), (80, 60, "7.9")])
def test_shorter_than_the_window_of_the_production_classifier(api, nothing_stored, window, samples, needed):
    production_model_row(architecture="window", window=window)
    resp = upload(api, Bad("short", csv_rows(n=samples, channels=MODEL_CHANNELS)))
    assert resp.status_code == 400
    expected = f"the classifier needs at least {needed} s (one window of {window} samples at 10 Hz)"
    assert expected in resp.json()["file"][0]


def test_a_sequence_model_counts_a_short_recording(api, queued):
    """A sequence model labels every sample of any length: its training window is no minimum."""
    production_model_row(architecture="sequence", window=256)
    assert upload(api, Bad("short", csv_rows(n=30, channels=MODEL_CHANNELS))).status_code == 202
