"""Readers for the supported recording formats -> :class:`Recording`.

Formats (``FORMATS``):

- ``exermote``: the Exermote CSV (Lerner 2017; ``../shared/data/exermote/README.md``):
  iPhone CoreMotion on the upper arm, ~10 Hz, 12 device columns plus labels.
- ``cara``: the CaRa smartwatch CSV (Nguyen et al., TPAMI 2025): no header,
  ``unix_ms, acc x/y/z (m/s^2, gravity included), gyro x/y/z (rad/s)``, bursty ~100 Hz.
- ``csv``: the canonical CSV: header ``time_s`` followed by channel names from
  ``CHANNEL_UNITS``; optionally a first line ``# start_time=<ISO 8601 with offset>``.
- ``json``: the canonical JSON: ``{"sample_rate_hz": float | "time_s": [float],
  "channels": [str], "samples": [[float, ...], ...]}`` and optionally ``"start_time":
  "<ISO 8601 with offset>"``, parsed as a stream (ijson) so that memory follows the numbers,
  not Python objects per value.

Every reader returns time in seconds from the first sample and float32 samples in
the units of ``CHANNEL_UNITS``. Errors raise :class:`RecordingError`, which names
the field and the problem so that the API can answer 400 with it.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import BinaryIO

import ijson
import numpy as np
import pandas as pd

FORMATS = ("exermote", "cara", "csv", "json")

#: Canonical channel names and their units. Readers map their columns onto these.
CHANNEL_UNITS: dict[str, str] = {
    "gravity_x": "g",
    "gravity_y": "g",
    "gravity_z": "g",
    "user_acc_x": "g",
    "user_acc_y": "g",
    "user_acc_z": "g",
    "pitch": "rad",
    "roll": "rad",
    "yaw": "rad",
    "gyro_x": "rad/s",
    "gyro_y": "rad/s",
    "gyro_z": "rad/s",
    "acc_x": "m/s^2",
    "acc_y": "m/s^2",
    "acc_z": "m/s^2",
}

#: The 12 iPhone channels of the Exermote model, in model input order.
EXERMOTE_CHANNELS: tuple[str, ...] = (
    "gravity_x", "gravity_y", "gravity_z",
    "user_acc_x", "user_acc_y", "user_acc_z",
    "pitch", "roll", "yaw",
    "gyro_x", "gyro_y", "gyro_z",
)  # fmt: skip

_EXERMOTE_COLUMNS = {
    "Device: xGravity": "gravity_x",
    "Device: yGravity": "gravity_y",
    "Device: zGravity": "gravity_z",
    "Device: xAcceleration": "user_acc_x",
    "Device: yAcceleration": "user_acc_y",
    "Device: zAcceleration": "user_acc_z",
    "Device: pitch": "pitch",
    "Device: roll": "roll",
    "Device: yaw": "yaw",
    "Device: xRotationRate": "gyro_x",
    "Device: yRotationRate": "gyro_y",
    "Device: zRotationRate": "gyro_z",
}
_EXERMOTE_EXERCISES = {"Burpee": "burpee", "Squat": "squat", "Situp": "sit_up"}
_EXERMOTE_HALVES = {"firstHalf": "first_half", "secondHalf": "second_half"}

#: Bounds that reject absurd uploads early (the counters need at least a few seconds).
MIN_DURATION_S = 2.0
MIN_SAMPLES = 10
MAX_SAMPLE_RATE_HZ = 1000.0
MIN_SAMPLE_RATE_HZ = 1.0
#: Longest recording (s): a workout, not a day. With the rate cap of each counter it bounds
#: every resampled grid, whatever the timestamps say.
MAX_DURATION_S = 4 * 3600.0
#: Longest pause between two samples (s); a longer gap is refused, naming its row (upload the
#: parts as sessions of their own). Real watch recordings pause for up to about 10 s.
MAX_GAP_S = 60.0
#: Relative slack on the rate bounds: decimal timestamps are not exact (a long 1000 Hz file
#: has a median step a hair under 1 ms).
RATE_TOLERANCE = 1e-6
#: Share of missing values per channel that is repaired by interpolation; more is refused.
MAX_MISSING_SHARE = 0.2
#: Largest magnitude a sample can have: samples are float32.
MAX_SAMPLE_VALUE = float(np.finfo(np.float32).max)
#: Deepest nesting of a JSON upload: the canonical JSON needs 3 (object, samples, row).
MAX_JSON_DEPTH = 8
#: Longest value or name quoted back in an error message, and longest message (characters).
MAX_QUOTED_CHARS = 40
MAX_MESSAGE_CHARS = 500

BREAK = "break"


class RecordingError(ValueError):
    """An upload that cannot be read. ``field`` names the part of the input at fault."""

    def __init__(self, message: str, field: str = "file") -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        super().__init__(message)
        self.field = field
        self.message = message


def quoted(value: object) -> str:
    """``repr(value)``, cut to ``MAX_QUOTED_CHARS`` (error messages never echo a whole cell)."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 1] + "…"


@dataclass(frozen=True)
class Recording:
    """One uploaded session of inertial samples.

    Attributes:
        time_s: float64, shape (n,), seconds from the first sample, strictly increasing.
        samples: float32, shape (n, c), finite, units per channel as in ``CHANNEL_UNITS``.
        channels: c canonical channel names.
        source_format: the reader that produced it (one of ``FORMATS``).
        labels: optional per-sample phase labels, shape (n,), ``break`` or
            ``<exercise>.first_half`` / ``<exercise>.second_half`` (Exermote only).
        annotations: optional extra per-sample arrays, e.g. ``set_break`` (bool, Exermote).
        subject: athlete or participant id, where the format carries one.
        start_time: when the first sample was taken, where the format says: aware (an instant:
            CaRa's Unix ms in UTC, the canonical formats' ``start_time``) or naive (Exermote's
            ``timeStampSaved``: the phone's wall-clock time, zone not recorded); else None.
    """

    time_s: np.ndarray
    samples: np.ndarray
    channels: tuple[str, ...]
    source_format: str
    labels: np.ndarray | None = None
    annotations: Mapping[str, np.ndarray] = field(default_factory=dict)
    subject: str | None = None
    start_time: dt.datetime | None = None

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1] - self.time_s[0]) if self.n_samples else 0.0

    @property
    def sample_rate_hz(self) -> float:
        """Mean sample rate (Hz): ``(n - 1) / duration``. Bursty recordings (samples arriving in
        packets, as from CaRa's watch) have a median step far shorter than their mean one."""
        if self.n_samples < 2 or self.duration_s <= 0:
            return 0.0
        return float((self.n_samples - 1) / self.duration_s)

    def channel(self, name: str) -> np.ndarray:
        """Samples of one channel, shape (n,). Raises KeyError if absent."""
        return self.samples[:, self.channels.index(name)]

    def has_channels(self, names: tuple[str, ...] | list[str]) -> bool:
        return all(n in self.channels for n in names)

    def select(self, names: tuple[str, ...] | list[str]) -> np.ndarray:
        """float32 array (n, len(names)) of the named channels. Raises RecordingError if missing."""
        missing = [n for n in names if n not in self.channels]
        if missing:
            raise RecordingError(f"missing channels: {', '.join(missing)}", field="file")
        idx = [self.channels.index(n) for n in names]
        return self.samples[:, idx]


Source = str | Path | bytes | BinaryIO


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str | Path):
        return Path(source).read_bytes()
    data = source.read()
    return data.encode() if isinstance(data, str) else data


def _check_text(raw: bytes) -> None:
    if not raw.strip():
        raise RecordingError("the file is empty")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise RecordingError("the file is UTF-16 text; expected UTF-8")
    if b"\x00" in raw[:4096]:
        raise RecordingError("the file is binary, not text (expected UTF-8 CSV or JSON)")


def _decode(raw: bytes) -> str:
    _check_text(raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordingError(f"the file is not UTF-8 text (byte {exc.start})") from exc


def read_recording(source: Source, fmt: str) -> Recording:
    """Read one recording in format ``fmt`` from a path, bytes or a binary file object.

    Raises:
        RecordingError: unknown format (field ``format``), or a file that cannot be
            parsed or validated (field ``file``), with a message naming the problem.
    """
    readers = {"exermote": _read_exermote, "cara": _read_cara, "csv": _read_csv}
    if fmt not in (*readers, "json"):
        raise RecordingError(f"unknown format {quoted(fmt)}; expected one of {', '.join(FORMATS)}", field="format")
    raw = _read_bytes(source)
    if fmt == "json":
        _check_text(raw)
        return _read_json(raw)
    return readers[fmt](_decode(raw))


def _read_table(text: str, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(text), **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise RecordingError(f"cannot parse CSV: {str(exc).splitlines()[0]}") from exc


def _read_table_numeric(text: str, numeric: Iterable[str], **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with the ``numeric`` columns parsed as float64 by the C parser, the
    others as text; where a numeric column holds text, the table is read again as text so
    that :func:`_numeric` names the value (and a broken table raises RecordingError).

    The values are those ``pd.to_numeric`` gives on the text, bit for bit (checked on every
    shared Exermote recording, ``tests/inference/test_io.py``), in about a third of the time.
    """
    dtype = defaultdict(lambda: str, dict.fromkeys(numeric, np.float64))
    try:
        return pd.read_csv(io.StringIO(text), dtype=dtype, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, TypeError):
        return _read_table(text, dtype=str, **kwargs)


def _numeric(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Columns as float64 (n, c); text in a numeric column raises RecordingError."""
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise RecordingError(
                f"column {quoted(col)}: non-numeric value {quoted(frame[col].iloc[row])} in data row {row + 1}"
            )
        out[:, j] = values.to_numpy(dtype=np.float64)
    return out


def _check_range(values: np.ndarray, names: list[str]) -> None:
    """Every value fits a float32 sample (NaN, a missing value, passes). Raises RecordingError
    naming the first data row and column that does not."""
    with np.errstate(invalid="ignore"):
        bad = np.abs(values) > MAX_SAMPLE_VALUE  # inf included
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise RecordingError(
            f"column {quoted(names[col])}, data row {row + 1}: value {values[row, col]:.6g} is "
            f"{'infinite' if np.isinf(values[row, col]) else 'beyond the range of a sample'} "
            f"(at most {MAX_SAMPLE_VALUE:.3g} in magnitude)"
        )


def _repair_missing(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Fill a few NaN per channel by linear interpolation (nearest at the edges).

    Raises RecordingError when a channel is mostly missing.
    """
    missing = np.isnan(values)
    if not missing.any():
        return values
    share = missing.mean(axis=0)
    worst = int(np.argmax(share))
    if share[worst] > MAX_MISSING_SHARE:
        raise RecordingError(f"column {quoted(names[worst])}: {share[worst]:.0%} of values are missing")
    idx = np.arange(values.shape[0])
    out = values.copy()
    for j in np.flatnonzero(missing.any(axis=0)):
        ok = ~missing[:, j]
        out[:, j] = np.interp(idx, idx[ok], values[ok, j])
    return out


def spread_repeated(time_s: np.ndarray) -> np.ndarray:
    """Spread rows that share a timestamp evenly over the tick up to the next distinct one.

    Apps that stamp samples with a coarse clock (10 ms, or whole seconds) write several rows
    with the same time: they were sampled within that tick, in file order. ``k`` rows stamped
    ``t`` followed by a row stamped ``t'`` get ``t + j (t' - t) / k``, ``j = 0..k-1``; rows
    sharing the last stamp are spread at the median step of the rows before them. No row is
    dropped or merged, so a single-channel recording keeps every cycle.

    Args:
        time_s: float64, shape (n,), non-decreasing seconds.

    Returns:
        float64, shape (n,), strictly increasing wherever the input had at least two distinct
        stamps (a file with one stamp stays constant and is refused as too short).
    """
    n = time_s.size
    starts = np.flatnonzero(np.concatenate([[True], np.diff(time_s) != 0]))
    if starts.size < 2:
        return time_s
    counts = np.diff(np.append(starts, n))
    ticks = np.diff(time_s[starts])
    steps = ticks / counts[:-1]
    steps = np.append(steps, np.median(steps))
    group = np.repeat(np.arange(starts.size), counts)
    within = np.arange(n) - starts[group]
    return time_s[starts][group] + within * steps[group]


def _finish(
    time_s: np.ndarray,
    values: np.ndarray,
    channels: list[str],
    fmt: str,
    *,
    labels: np.ndarray | None = None,
    annotations: Mapping[str, np.ndarray] | None = None,
    subject: str | None = None,
    start_time: dt.datetime | None = None,
) -> Recording:
    """Validate timestamps and values, shift time to start at 0, build the Recording.

    Data rows in messages count from 1 in the order given.
    """
    n = values.shape[0]
    if n < MIN_SAMPLES:
        raise RecordingError(f"the recording has {n} samples; at least {MIN_SAMPLES} are needed")
    if not np.isfinite(time_s).all():
        raise RecordingError("timestamps: missing or non-numeric values", field="file")
    dt = np.diff(time_s)
    if (dt < 0).any():
        row = int(np.flatnonzero(dt < 0)[0]) + 1
        raise RecordingError(f"timestamps are not increasing (data row {row + 1} goes back in time)")
    if (dt == 0).any():
        time_s = spread_repeated(time_s)
        dt = np.diff(time_s)
    duration = float(time_s[-1] - time_s[0])
    if duration < MIN_DURATION_S:
        raise RecordingError(f"the recording lasts {duration:.2f} s; at least {MIN_DURATION_S:g} s are needed")
    gap = int(np.argmax(dt))
    if dt[gap] > MAX_GAP_S:
        raise RecordingError(
            f"timestamps jump by {dt[gap]:.6g} s at data row {gap + 2}; gaps of at most {MAX_GAP_S:g} s are "
            "accepted (upload each part as a session of its own)"
        )
    if duration > MAX_DURATION_S:
        raise RecordingError(
            f"the recording lasts {duration:.6g} s; at most {MAX_DURATION_S:g} s ({MAX_DURATION_S / 3600:g} h) "
            "are accepted"
        )
    rate = 1.0 / float(np.median(dt))
    if not MIN_SAMPLE_RATE_HZ * (1 - RATE_TOLERANCE) <= rate <= MAX_SAMPLE_RATE_HZ * (1 + RATE_TOLERANCE):
        raise RecordingError(f"sample rate {rate:.3g} Hz is outside {MIN_SAMPLE_RATE_HZ:g}-{MAX_SAMPLE_RATE_HZ:g} Hz")
    _check_range(values, channels)
    values = _repair_missing(values, channels)
    return Recording(
        time_s=(time_s - time_s[0]).astype(np.float64),
        samples=values.astype(np.float32),
        channels=tuple(channels),
        source_format=fmt,
        labels=labels,
        annotations=dict(annotations or {}),
        subject=subject,
        start_time=start_time,
    )


#: The canonical CSV's optional first line: ``# start_time=2024-05-01T18:30:00+02:00``.
CSV_START_TIME_PREFIX = "# start_time="


def parse_start_time(value: object, where: str) -> dt.datetime:
    """An ISO 8601 date-time with a UTC offset (``Z`` or ``+02:00``), as an aware datetime.

    Raises:
        RecordingError: not a string, not ISO 8601, or without an offset; names ``where``.
    """
    if not isinstance(value, str):
        raise RecordingError(f"{where} must be an ISO 8601 date-time string, not {quoted(value)}")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordingError(f"{where}: {quoted(value)} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise RecordingError(f"{where}: {quoted(value)} needs a UTC offset (Z or +HH:MM)")
    return parsed


def exermote_phase(exercise_type: str, exercise_subtype: str) -> str:
    """Map Exermote's (exerciseType, exerciseSubType) onto a phase name.

    ``setBreak``/``Break`` -> ``break``; ``Burpee``+``firstHalf`` -> ``burpee.first_half``.
    """
    exercise = _EXERMOTE_EXERCISES.get(exercise_type)
    half = _EXERMOTE_HALVES.get(exercise_subtype)
    if exercise is None or half is None:
        return BREAK
    return f"{exercise}.{half}"


def _read_exermote(text: str) -> Recording:
    wanted = {*_EXERMOTE_COLUMNS, "timeStampSaved", "exerciseType", "exerciseSubType", "individual"}
    # Only the columns used: the file has 70 (nearables included), parsing all costs twice as much.
    frame = _read_table_numeric(text, _EXERMOTE_COLUMNS, keep_default_na=True, usecols=lambda c: c in wanted)
    needed = [*_EXERMOTE_COLUMNS, "timeStampSaved"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise RecordingError(f"not an Exermote CSV: missing columns {', '.join(missing[:4])}")
    if frame.empty:
        raise RecordingError(f"the recording has 0 samples; at least {MIN_SAMPLES} are needed")
    times = pd.to_datetime(frame["timeStampSaved"], format="%Y-%m-%d %H:%M:%S:%f", errors="coerce")
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise RecordingError(f"column 'timeStampSaved': unreadable time in data row {row + 1}")
    time_s = (times - times.iloc[0]).dt.total_seconds().to_numpy(dtype=np.float64)
    start_time = times.iloc[0].to_pydatetime()  # naive: the phone's local time
    values = _numeric(frame, list(_EXERMOTE_COLUMNS))
    labels = annotations = None
    subject = None
    if {"exerciseType", "exerciseSubType"} <= set(frame.columns):
        etype = frame["exerciseType"].fillna("setBreak").to_numpy(dtype=str)
        esub = frame["exerciseSubType"].fillna("setBreak").to_numpy(dtype=str)
        labels = np.array([exermote_phase(t, s) for t, s in zip(etype, esub, strict=True)])
        annotations = {"set_break": etype == "setBreak"}
    if "individual" in frame.columns and frame["individual"].notna().any():
        subject = str(frame["individual"].dropna().iloc[0]).strip()
    return _finish(
        time_s,
        values,
        list(_EXERMOTE_COLUMNS.values()),
        "exermote",
        labels=labels,
        annotations=annotations,
        subject=subject,
        start_time=start_time,
    )


def _read_cara(text: str) -> Recording:
    frame = _read_table_numeric(text, range(7), header=None)
    if frame.shape[1] != 7:
        raise RecordingError(
            f"a CaRa CSV has 7 comma-separated columns (unix ms, acc x/y/z, gyro x/y/z); found {frame.shape[1]}"
        )
    frame.columns = ["unix_ms", "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    values = _numeric(frame, list(frame.columns))
    _check_range(values[:, 1:], list(frame.columns[1:]))  # before rows are dropped: rows as in the file
    time_s = values[:, 0] / 1000.0
    # Bursty arrival can repeat a millisecond stamp; keep the first row of each stamp.
    keep = np.concatenate([[True], np.diff(time_s) != 0])
    try:
        start_time = dt.datetime.fromtimestamp(time_s[0], dt.UTC)
    except (OverflowError, OSError, ValueError):  # a stamp no clock could give: no start time
        start_time = None
    return _finish(time_s[keep], values[keep, 1:], list(frame.columns[1:]), "cara", start_time=start_time)


def _check_channels(channels: list[str]) -> None:
    unknown = [c for c in channels if c not in CHANNEL_UNITS]
    if unknown:
        raise RecordingError(
            f"unknown channels {', '.join(map(repr, unknown[:5]))}; known: {', '.join(CHANNEL_UNITS)}", field="file"
        )
    if len(set(channels)) != len(channels):
        raise RecordingError("channel names are repeated", field="file")
    if not channels:
        raise RecordingError("no channels", field="file")


def _read_csv(text: str) -> Recording:
    start_time = None
    if text.startswith(CSV_START_TIME_PREFIX):
        first, _, text = text.partition("\n")
        start_time = parse_start_time(first.removeprefix(CSV_START_TIME_PREFIX).strip(), "'# start_time=' line")
    header = text.split("\n", 1)[0].strip().split(",")
    if len({h.strip() for h in header}) != len(header):
        raise RecordingError("channel names are repeated in the header")
    frame = _read_table(text, dtype=str)
    columns = [str(c).strip() for c in frame.columns]
    frame.columns = columns
    if "time_s" not in columns:
        hint = " (is the delimiter a comma?)" if len(columns) == 1 else ""
        raise RecordingError(f"the header has no 'time_s' column{hint}")
    channels = [c for c in columns if c != "time_s"]
    _check_channels(channels)
    time_s = _numeric(frame, ["time_s"])[:, 0]
    return _finish(time_s, _numeric(frame, channels), channels, "csv", start_time=start_time)


def _read_json(raw: bytes) -> Recording:
    """The canonical JSON, streamed: ``samples`` rows go into a float64 array in batches of
    :data:`_JSON_BATCH_NUMBERS` numbers, so that memory is about 8 bytes per number (plus the
    upload and one batch) whatever the shape of the rows."""
    if raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    _check_json_depth(raw)
    try:
        first = next(ijson.parse(raw), None)
        if first is None or first[1] != "start_map":
            raise RecordingError("the JSON document must be an object with 'channels' and 'samples'")
        channels = _json_value(raw, "channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise RecordingError("'channels' must be a list of channel names")
        _check_channels(channels)
        values = _json_rows(raw, len(channels))
        time_s = _json_time(raw, values.shape[0])
        start_time = _json_later_value(raw, "start_time")
        start_time = None if start_time is _MISSING else parse_start_time(start_time, "'start_time'")
    except ijson.JSONError as exc:
        reason = str(exc).splitlines()[0].removeprefix("parse error: ")
        if "overflow" in reason:  # yajl refuses 1e999 and 400-digit integers
            raise RecordingError(f"invalid JSON: a number is beyond the float range ({reason})") from exc
        raise RecordingError(f"invalid JSON: {reason[:MAX_QUOTED_CHARS]}") from exc
    return _finish(time_s, values, channels, "json", start_time=start_time)


_MISSING = object()
_OPEN, _CLOSE = np.frombuffer(b"[{", dtype=np.uint8), np.frombuffer(b"]}", dtype=np.uint8)


def _check_json_depth(raw: bytes, chunk: int = 1 << 20) -> None:
    """Refuse nesting deeper than ``MAX_JSON_DEPTH`` before parsing (the parser would build it).

    Brackets inside strings count too: no valid recording has them, so a false refusal can only
    hit a document that is not a recording anyway.
    """
    depth = 0
    for start in range(0, len(raw), chunk):
        b = np.frombuffer(raw, dtype=np.uint8, count=min(chunk, len(raw) - start), offset=start)
        steps = np.isin(b, _OPEN).astype(np.int32) - np.isin(b, _CLOSE).astype(np.int32)
        levels = depth + np.cumsum(steps, dtype=np.int32)
        if levels.size and int(levels.max()) > MAX_JSON_DEPTH:
            raise RecordingError(f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels")
        depth = int(levels[-1]) if levels.size else depth


def _json_value(raw: bytes, key: str) -> object:
    """The first top-level ``key``'s value (parsed in full: only for small values), or _MISSING."""
    return next(ijson.items(raw, key, use_float=True), _MISSING)


def _json_later_value(raw: bytes, key: str) -> object:
    """:func:`_json_value` for a key read after the ``samples`` pass, which parsed the whole
    document (no syntax error is left to find): an absent key costs no further pass."""
    return _json_value(raw, key) if _may_have_key(raw, key) else _MISSING


def _may_have_key(raw: bytes, key: str) -> bool:
    """False only when the document cannot hold ``key`` (an ASCII name): neither ``"key"`` nor a
    ``\\u`` escape (the one other way to spell its letters) is in it."""
    return f'"{key}"'.encode() in raw or b"\\u" in raw


#: Numbers converted per batch: rows are gathered by the parser (C) and converted by NumPy in
#: batches of about this many values (a few MiB of Python objects), not one Python step each.
_JSON_BATCH_NUMBERS = 1 << 16
#: The element types a batch may hold to be converted at once (ijson's numbers, and null).
_JSON_PLAIN = frozenset({float, int, type(None)})


def _json_numbers(items: Iterator, first: int, what: str) -> np.ndarray:
    """Numbers from ``items`` into a growing float64 array (None is NaN)."""
    out = np.empty(max(first, 1024), dtype=np.float64)
    n = 0
    while batch := list(islice(items, _JSON_BATCH_NUMBERS)):
        values = _plain_floats(batch)
        if values is None:
            values = _checked_numbers(batch, what)
        if n + len(values) > out.shape[0]:
            out = np.resize(out, max(2 * out.shape[0], n + len(values)))
        out[n : n + len(values)] = values
        n += len(values)
    return out[:n]


def _plain_floats(batch: list, *, rows: bool = False) -> np.ndarray | None:
    """``batch`` (numbers or nulls, or with ``rows`` lists of them of one length) as float64 in
    one step; None when it holds anything else or a number beyond the float range (the caller
    then finds and names it)."""
    if not set(map(type, chain.from_iterable(batch) if rows else batch)) <= _JSON_PLAIN:
        return None
    try:
        return np.array(batch, dtype=np.float64)
    except (OverflowError, ValueError, TypeError):
        return None


def _checked_numbers(values: list, what: str) -> np.ndarray:
    """``values`` one by one: the first that is not a number (or null) raises RecordingError."""
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None:
            out[i] = np.nan
        elif _is_number(v):
            try:
                out[i] = v
            except OverflowError as exc:
                raise RecordingError(f"{what}: {quoted(v)} is beyond the float range") from exc
        else:
            raise RecordingError(f"{what} must hold numbers (or null for a missing value), not {quoted(v)}")
    return out


def _json_rows(raw: bytes, width: int) -> np.ndarray:
    """``samples`` as float64 (n, width); each row a list of ``width`` numbers or nulls."""
    out = np.empty((1024, width), dtype=np.float64)
    n = 0
    rows = ijson.items(raw, "samples.item", use_float=True)
    while batch := list(islice(rows, max(1, _JSON_BATCH_NUMBERS // width))):
        values = None
        if set(map(type, batch)) == {list} and set(map(len, batch)) == {width}:
            values = _plain_floats(batch, rows=True)
        if values is None:
            values = _checked_rows(batch, width, start=n)
        if n + len(values) > out.shape[0]:
            out = np.resize(out, (max(2 * out.shape[0], n + len(values)), width))
        out[n : n + len(values)] = values
        n += len(values)
    if n == 0:
        raise RecordingError("'samples' must be a non-empty list of rows")
    return out[:n]


def _checked_rows(rows: list, width: int, *, start: int) -> np.ndarray:
    """``rows`` one by one (data rows from ``start + 1``): the first that is not a list of
    ``width`` numbers or nulls raises RecordingError naming it."""
    out = np.empty((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise RecordingError(
                f"every row of 'samples' must be a list of {width} numbers (row {start + i + 1} is not)"
            )
        out[i] = _checked_numbers(row, f"'samples' row {start + i + 1}")
    return out


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _json_time(raw: bytes, n: int) -> np.ndarray:
    """Timestamps (s), shape (n,), from the JSON's ``time_s`` or else its ``sample_rate_hz``."""
    items = ijson.items(raw, "time_s.item", use_float=True) if _may_have_key(raw, "time_s") else iter(())
    ts = _json_numbers(items, n, "'time_s'")
    if ts.size or _json_later_value(raw, "time_s") is not _MISSING:
        if ts.size != n or np.isnan(ts).any():
            raise RecordingError(f"'time_s' must be a list of {n} numbers, one per row of 'samples'")
        return ts
    rate = _json_later_value(raw, "sample_rate_hz")
    if rate is _MISSING:
        raise RecordingError("the JSON needs 'sample_rate_hz' or 'time_s'")
    if not _is_number(rate):
        raise RecordingError("'sample_rate_hz' must be a number")
    if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:  # also false for NaN
        raise RecordingError(f"'sample_rate_hz' is outside {MIN_SAMPLE_RATE_HZ:g}-{MAX_SAMPLE_RATE_HZ:g} Hz")
    return np.arange(n, dtype=np.float64) / float(rate)
