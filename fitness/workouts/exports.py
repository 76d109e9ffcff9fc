"""A counted session as a file for the platforms users already have (reads only).

- ``health-connect``: JSON shaped as Health Connect's ``ExerciseSessionRecord`` (Jetpack
  ``androidx.health.connect.client.records``) with one ``ExerciseSegment`` per set: the field
  names of the Kotlin classes, instants as ISO 8601 UTC, zone offsets as ``java.time.ZoneOffset``
  strings (``+02:00``), segment types from the exercise catalog (:mod:`inference.catalog`).
  An app builds the record from it field by field; ``metadata.clientRecordId`` (the session id)
  and ``clientRecordVersion`` let Health Connect replace an earlier export of the same session.
- ``fit``: a FIT activity file (Garmin's Flexible and Interoperable Data Transfer protocol),
  written with ``fit-tool``: ``file_id``, timer ``event``s, one ``set`` message per counted set
  (``set_type`` active, start time, duration, repetitions, category) with rest sets between
  them, a ``record`` at the start and the end, one ``lap``, one ``session`` (sport training,
  sub-sport strength training) and the ``activity``: what Garmin Connect and Strava import.

Both use each set's ``reps`` (the user's correction where there is one) and leave out sets
corrected to 0 (phantom sets). Times: the session's ``started_at`` plus the sets' offsets.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fit_tool.fit_file_builder import FitFileBuilder
from fit_tool.profile.messages.activity_message import ActivityMessage
from fit_tool.profile.messages.event_message import EventMessage
from fit_tool.profile.messages.file_id_message import FileIdMessage
from fit_tool.profile.messages.lap_message import LapMessage
from fit_tool.profile.messages.record_message import RecordMessage
from fit_tool.profile.messages.session_message import SessionMessage
from fit_tool.profile.messages.set_message import SetMessage
from fit_tool.profile.profile_type import (
    Activity,
    CardioExerciseName,
    CrunchExerciseName,
    CurlExerciseName,
    DeadliftExerciseName,
    Event,
    EventType,
    ExerciseCategory,
    FileType,
    FlyeExerciseName,
    LapTrigger,
    LateralRaiseExerciseName,
    LegCurlExerciseName,
    LungeExerciseName,
    Manufacturer,
    PlyoExerciseName,
    PullUpExerciseName,
    PushUpExerciseName,
    RowExerciseName,
    SessionTrigger,
    SetType,
    ShoulderPressExerciseName,
    SitUpExerciseName,
    Sport,
    SquatExerciseName,
    SubSport,
    TotalBodyExerciseName,
    TricepsExtensionExerciseName,
)
from fit_tool.profile.profile_type import (
    BenchPressExerciseName as BenchPress,
)

from inference import catalog

from .models import SensorSession

#: ``?format=`` values, with the answer's content type and file suffix.
FORMATS = {
    "health-connect": ("application/json", "health-connect.json"),
    "fit": ("application/vnd.ant.fit", "fit"),
}

#: 1989-12-31T00:00:00Z, FIT's epoch, in Unix seconds.
FIT_EPOCH_S = 631_065_600

C = ExerciseCategory
#: FIT ``exercise_category`` (and ``<category>_exercise_name`` where one fits) of each catalog id.
FIT_CATEGORIES: dict[str, tuple[ExerciseCategory, int | None]] = {
    "unknown": (C.UNKNOWN, None),
    "arm_curl": (C.CURL, None),
    "back_extension": (C.HYPEREXTENSION, None),
    "ball_slam": (C.TOTAL_BODY, None),
    "barbell_shoulder_press": (C.SHOULDER_PRESS, ShoulderPressExerciseName.BARBELL_SHOULDER_PRESS.value),
    "bench_press": (C.BENCH_PRESS, BenchPress.BARBELL_BENCH_PRESS.value),
    "bench_sit_up": (C.SIT_UP, None),
    "burpee": (C.TOTAL_BODY, TotalBodyExerciseName.BURPEE.value),
    "crunch": (C.CRUNCH, CrunchExerciseName.CRUNCH.value),
    "deadlift": (C.DEADLIFT, DeadliftExerciseName.BARBELL_DEADLIFT.value),
    "double_arm_triceps_extension": (C.TRICEPS_EXTENSION, None),
    "dumbbell_curl_left_arm": (C.CURL, CurlExerciseName.DUMBBELL_BICEPS_CURL.value),
    "dumbbell_curl_right_arm": (C.CURL, CurlExerciseName.DUMBBELL_BICEPS_CURL.value),
    "dumbbell_front_raise": (C.LATERAL_RAISE, LateralRaiseExerciseName.FRONT_RAISE.value),
    "dumbbell_lateral_raise": (C.LATERAL_RAISE, LateralRaiseExerciseName.DUMBBELL_LATERAL_RAISE.value),
    "dumbbell_row": (C.ROW, RowExerciseName.DUMBBELL_ROW.value),
    "dumbbell_triceps_extension_left_arm": (C.TRICEPS_EXTENSION, None),
    "dumbbell_triceps_extension_right_arm": (C.TRICEPS_EXTENSION, None),
    "dumbbell_triceps_extension_two_arm": (C.TRICEPS_EXTENSION, None),
    "forward_twist": (C.CORE, None),
    "front_raise": (C.LATERAL_RAISE, LateralRaiseExerciseName.FRONT_RAISE.value),
    "hip_thrust": (C.HIP_RAISE, None),
    "hula_hoop": (C.CARDIO, None),
    "jumping_jack": (C.CARDIO, CardioExerciseName.JUMPING_JACKS.value),
    "jump_rope": (C.CARDIO, CardioExerciseName.JUMP_ROPE.value),
    "kettlebell_swing": (C.HIP_SWING, None),
    "lateral_raise": (C.LATERAL_RAISE, None),
    "lat_pull_down": (C.PULL_UP, PullUpExerciseName.LAT_PULLDOWN.value),
    "leg_curl": (C.LEG_CURL, LegCurlExerciseName.LEG_CURL.value),
    "leg_extension": (C.UNKNOWN, None),  # FIT has no leg-extension category
    "leg_press": (C.SQUAT, SquatExerciseName.LEG_PRESS.value),
    "leg_raise": (C.LEG_RAISE, None),
    "lunge": (C.LUNGE, LungeExerciseName.LUNGE.value),
    "mountain_climber": (C.PLANK, None),
    "pull_up": (C.PULL_UP, PullUpExerciseName.PULL_UP.value),
    "punch": (C.CARDIO, None),
    "shoulder_press": (C.SHOULDER_PRESS, None),
    "single_arm_triceps_extension": (C.TRICEPS_EXTENSION, None),
    "sit_up": (C.SIT_UP, SitUpExerciseName.SIT_UP.value),
    "squat": (C.SQUAT, SquatExerciseName.SQUAT.value),
    "upper_twist": (C.CORE, None),
    "weightlifting": (C.OLYMPIC_LIFT, None),
    "barbell_row": (C.ROW, RowExerciseName.BARBELL_ROW.value),
    "box_jump": (C.PLYO, PlyoExerciseName.BOX_JUMP.value),
    "calf_raise": (C.CALF_RAISE, None),
    "chest_fly": (C.FLYE, FlyeExerciseName.DUMBBELL_FLYE.value),
    "chin_up": (C.PULL_UP, PullUpExerciseName.CHIN_UP.value),
    "dip": (C.TRICEPS_EXTENSION, TricepsExtensionExerciseName.BODY_WEIGHT_DIP.value),
    "glute_bridge": (C.HIP_RAISE, None),
    "high_knees": (C.CARDIO, None),
    "push_up": (C.PUSH_UP, PushUpExerciseName.PUSH_UP.value),
    "shrug": (C.SHRUG, None),
    "step_up": (C.LUNGE, None),
    "thruster": (C.SQUAT, SquatExerciseName.THRUSTERS.value),
    "triceps_pushdown": (C.TRICEPS_EXTENSION, TricepsExtensionExerciseName.TRICEPS_PRESSDOWN.value),
    "upright_row": (C.ROW, None),
    "wall_ball": (C.SQUAT, SquatExerciseName.WALL_BALL.value),
}


class ExportFormatError(ValueError):
    """``format`` is missing or not one of :data:`FORMATS`."""


class SessionNotDoneError(Exception):
    """The session is not counted (queued, processing or failed): nothing to export yet."""


@dataclass(frozen=True)
class Export:
    content: bytes
    content_type: str
    filename: str


@dataclass(frozen=True)
class _Set:
    """One exported set: aware UTC instants, the user's count."""

    exercise: str
    reps: int
    start: dt.datetime
    end: dt.datetime


def session_export(*, session: SensorSession, fmt: str | None) -> Export:
    """The session as a ``health-connect`` JSON document or a ``fit`` file.

    Raises:
        ExportFormatError: ``fmt`` is not a key of :data:`FORMATS`.
        SessionNotDoneError: the session's status is not ``done``.
    """
    if fmt not in FORMATS:
        raise ExportFormatError(f"{fmt!r} is not an export format; use one of: {', '.join(FORMATS)}")
    if session.status != SensorSession.Status.DONE:
        raise SessionNotDoneError(f"the session is not counted (status: {session.status})")
    content_type, suffix = FORMATS[fmt]
    content = health_connect_record(session) if fmt == "health-connect" else fit_activity(session)
    if isinstance(content, dict):
        content = json.dumps(content, indent=2).encode()
    return Export(content=content, content_type=content_type, filename=f"session-{session.pk}.{suffix}")


def _recording_span(session: SensorSession) -> tuple[dt.datetime, dt.datetime]:
    """When the recording began (``session.started_at``, its first sample) and ended (aware UTC)."""
    start = session.started_at
    return start, start + dt.timedelta(seconds=max(session.duration_s, 0.001))


def _exported_sets(session: SensorSession) -> tuple[dt.datetime, dt.datetime, list[_Set]]:
    """The recording's span and its sets with repetitions, in time order, clamped inside it."""
    sets = sorted(session.sets.all(), key=lambda s: (s.start_s, s.index))
    start, end = _recording_span(session)
    out = []
    for s in sets:
        if s.reps <= 0:
            continue
        set_start = min(max(s.performed_at, start), end - dt.timedelta(milliseconds=1))
        set_end = min(max(set_start + dt.timedelta(seconds=s.end_s - s.start_s), set_start), end)
        if set_end <= set_start:  # Health Connect needs start < end
            set_end = set_start + dt.timedelta(milliseconds=1)
        if out and set_start < out[-1].end:  # segments must not overlap
            set_start = out[-1].end
            set_end = max(set_end, set_start + dt.timedelta(milliseconds=1))
        out.append(_Set(exercise=s.exercise, reps=s.reps, start=set_start, end=min(set_end, end)))
    return start, end, [s for s in out if s.start < s.end]


def _instant(t: dt.datetime) -> str:
    """``java.time.Instant.toString()``-style UTC instant, millisecond precision."""
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _zone_offset(t: dt.datetime, time_zone: str) -> str:
    """``java.time.ZoneOffset`` of ``time_zone`` at ``t``, as ``ZoneOffset.of`` parses it: ``+02:00``."""
    offset = t.astimezone(ZoneInfo(time_zone)).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _time_zone(session: SensorSession) -> str:
    return getattr(session.user, "time_zone", "") or "UTC"


def _title(sets: list[_Set]) -> str:
    names = list(dict.fromkeys(catalog.EXERCISES[s.exercise].name if s.exercise in catalog.EXERCISES else s.exercise
                               for s in sets))  # fmt: skip
    total = sum(s.reps for s in sets)
    return f"{', '.join(names) or 'Workout'}: {total} repetitions"


def health_connect_record(session: SensorSession) -> dict:
    """The session as Health Connect's ``ExerciseSessionRecord`` with its ``ExerciseSegment``s.

    Returns a JSON-ready dict: ``startTime``, ``startZoneOffset``, ``endTime``,
    ``endZoneOffset``, ``exerciseType`` (``EXERCISE_TYPE_STRENGTH_TRAINING`` = 70, which accepts
    every segment type of the catalog), ``title``, ``metadata`` (``clientRecordId``,
    ``clientRecordVersion``) and ``segments``: ``[{startTime, endTime, segmentType, repetitions,
    setIndex}]`` in time order, ``setIndex`` 0, 1, ... over the exported sets.
    """
    start, end, sets = _exported_sets(session)
    zone = _time_zone(session)
    version_at = max([session.finished_at or session.created_at, *_review_times(session)])
    return {
        "recordType": "ExerciseSessionRecord",
        "startTime": _instant(start),
        "startZoneOffset": _zone_offset(start, zone),
        "endTime": _instant(end),
        "endZoneOffset": _zone_offset(end, zone),
        "exerciseType": catalog.HEALTH_CONNECT_STRENGTH_TRAINING,
        "title": _title(sets),
        "metadata": {
            "clientRecordId": f"repcount-session-{session.pk}",
            "clientRecordVersion": int(version_at.timestamp() * 1000),
        },
        "segments": [
            {
                "startTime": _instant(s.start),
                "endTime": _instant(s.end),
                "segmentType": catalog.health_connect_type(s.exercise),
                "repetitions": s.reps,
                "setIndex": i,
            }
            for i, s in enumerate(sets)
        ],
    }


def _review_times(session: SensorSession) -> list[dt.datetime]:
    """When the user last corrected or confirmed a set (a new export must replace the old one)."""
    return [t for s in session.sets.all() if (t := getattr(s, "reviewed_at", None)) is not None]


def _ms(t: dt.datetime) -> int:
    """Milliseconds since the Unix epoch (fit-tool converts to FIT's 1989 epoch)."""
    return round(t.timestamp() * 1000)


def fit_activity(session: SensorSession) -> bytes:
    """The session as a FIT activity file (bytes, header and CRC included).

    Messages, in order: ``file_id`` (activity, manufacturer development), ``event`` timer start,
    ``record`` at the start, per set an active ``set`` (``start_time``, ``timestamp`` = its end,
    ``duration`` s, ``repetitions``, ``category``/``category_subtype``) preceded by a rest ``set``
    for the pause before it, ``record`` and timer stop at the end, then ``lap``, ``session``
    (sport training, sub-sport strength training) and ``activity``.
    """
    start, end, sets = _exported_sets(session)
    local_offset = start.astimezone(ZoneInfo(_time_zone(session))).utcoffset() or dt.timedelta(0)
    builder = FitFileBuilder(auto_define=True, min_string_size=50)

    file_id = FileIdMessage()
    file_id.type = FileType.ACTIVITY
    file_id.manufacturer = Manufacturer.DEVELOPMENT.value
    file_id.product = 0
    file_id.serial_number = int(session.pk.int % 0xFFFFFFFE) or 1
    file_id.time_created = _ms(start)
    builder.add(file_id)

    builder.add(_event(EventType.START, start))
    builder.add(_record(start))
    index, cursor = 0, start
    for s in sets:
        if s.start > cursor:
            builder.add(_set(index, SetType.REST, cursor, s.start))
            index += 1
        builder.add(_set(index, SetType.ACTIVE, s.start, s.end, exercise=s.exercise, reps=s.reps))
        index += 1
        cursor = s.end
    builder.add(_record(end))
    builder.add(_event(EventType.STOP_ALL, end))
    builder.add_all(_summary(start, end, local_offset))
    return builder.build().to_bytes()


def _summary(start: dt.datetime, end: dt.datetime, local_offset: dt.timedelta) -> list:
    """The ``lap``, ``session`` and ``activity`` messages closing an activity file."""
    elapsed = (end - start).total_seconds()
    lap = LapMessage()
    lap.message_index = 0
    lap.timestamp = _ms(end)
    lap.start_time = _ms(start)
    lap.total_elapsed_time = elapsed
    lap.total_timer_time = elapsed
    lap.event = Event.LAP
    lap.event_type = EventType.STOP
    lap.lap_trigger = LapTrigger.SESSION_END
    lap.sport = Sport.TRAINING
    lap.sub_sport = SubSport.STRENGTH_TRAINING

    fit_session = SessionMessage()
    fit_session.message_index = 0
    fit_session.timestamp = _ms(end)
    fit_session.start_time = _ms(start)
    fit_session.total_elapsed_time = elapsed
    fit_session.total_timer_time = elapsed
    fit_session.sport = Sport.TRAINING
    fit_session.sub_sport = SubSport.STRENGTH_TRAINING
    fit_session.first_lap_index = 0
    fit_session.num_laps = 1
    fit_session.event = Event.SESSION
    fit_session.event_type = EventType.STOP
    fit_session.trigger = SessionTrigger.ACTIVITY_END

    activity = ActivityMessage()
    activity.timestamp = _ms(end)
    activity.total_timer_time = elapsed
    activity.num_sessions = 1
    activity.type = Activity.MANUAL
    activity.event = Event.ACTIVITY
    activity.event_type = EventType.STOP
    # local_date_time is seconds since FIT's epoch in local time (fit-tool does not convert it)
    activity.local_timestamp = round((end + local_offset).timestamp()) - FIT_EPOCH_S
    return [lap, fit_session, activity]


def _event(event_type: EventType, at: dt.datetime) -> EventMessage:
    message = EventMessage()
    message.event = Event.TIMER
    message.event_type = event_type
    message.timestamp = _ms(at)
    return message


def _record(at: dt.datetime) -> RecordMessage:
    message = RecordMessage()
    message.timestamp = _ms(at)
    return message


def _set(
    index: int,
    set_type: SetType,
    start: dt.datetime,
    end: dt.datetime,
    *,
    exercise: str | None = None,
    reps: int | None = None,
) -> SetMessage:
    message = SetMessage()
    message.message_index = index
    message.timestamp = _ms(end)
    message.start_time = _ms(start)
    message.duration = (end - start).total_seconds()
    message.set_type = set_type.value
    if exercise is not None:
        category, subtype = FIT_CATEGORIES.get(exercise, (ExerciseCategory.UNKNOWN, None))
        message.category = [category.value]
        if subtype is not None:
            message.category_subtype = [subtype]
        message.repetitions = reps
    return message
