"""GET /api/v1/sessions/{id}/export/: Health Connect JSON and a FIT file read back by Garmin's own SDK."""

import datetime as dt

import pytest
from garmin_fit_sdk import Decoder, Stream

from fitness.workouts.models import ExerciseSet
from tests.factories import counted_session

pytestmark = pytest.mark.django_db

AT = dt.datetime(2017, 3, 30, 10, 0, tzinfo=dt.UTC)
#: squat x2 from 0.5 s (ends 4.0 s), push-up x1 from 5.0 s (ends 6.5 s), unknown x3 from 6.6 s (ends 12.1 s).
SPEC = [("squat", 2, 0.5), ("push_up", 1, 5.0), ("unknown", 3, 6.6)]


def url(session) -> str:
    return f"/api/v1/sessions/{session.pk}/export/"


@pytest.fixture
def session(user):
    user.time_zone = "Europe/Berlin"
    user.save(update_fields=["time_zone"])
    session = counted_session(user, SPEC, at=AT)
    session.duration_s = 15.0
    session.save(update_fields=["duration_s"])
    return session


def test_health_connect_record_with_one_segment_per_set(api, session):
    resp = api.get(url(session), {"format": "health-connect"})
    assert resp.status_code == 200, resp.content
    assert resp["Content-Type"] == "application/json"
    assert resp["Content-Disposition"] == f'attachment; filename="session-{session.pk}.health-connect.json"'
    record = resp.json()
    assert record["startTime"] == "2017-03-30T10:00:00.000Z"
    assert record["endTime"] == "2017-03-30T10:00:15.000Z"
    assert record["startZoneOffset"] == record["endZoneOffset"] == "+02:00"  # Berlin in summer time
    assert record["exerciseType"] == 70
    assert record["metadata"]["clientRecordId"].endswith(str(session.pk))
    assert [(s["segmentType"], s["repetitions"], s["setIndex"]) for s in record["segments"]] == [
        (51, 2, 0),  # EXERCISE_SEGMENT_TYPE_SQUAT
        (38, 1, 1),  # push-up: no Health Connect type, OTHER_WORKOUT
        (0, 3, 2),  # EXERCISE_SEGMENT_TYPE_UNKNOWN
    ]
    first = record["segments"][0]
    assert (first["startTime"], first["endTime"]) == ("2017-03-30T10:00:00.500Z", "2017-03-30T10:00:04.000Z")
    ends = [(s["startTime"], s["endTime"]) for s in record["segments"]]
    assert all(a < b for a, b in ends)
    assert all(ends[i][1] <= ends[i + 1][0] for i in range(len(ends) - 1))  # no overlap
    assert record["startTime"] <= ends[0][0]
    assert ends[-1][1] <= record["endTime"]


def test_corrected_reps_are_exported_and_phantom_sets_left_out(api, session):
    sets = list(ExerciseSet.objects.filter(session=session).order_by("index"))
    ExerciseSet.objects.filter(pk=sets[0].pk).update(reps=7)
    ExerciseSet.objects.filter(pk=sets[1].pk).update(reps=0)
    segments = api.get(url(session), {"format": "health-connect"}).json()["segments"]
    assert [(s["segmentType"], s["repetitions"], s["setIndex"]) for s in segments] == [(51, 7, 0), (0, 3, 1)]


def decode(content: bytes) -> dict:
    messages, errors = Decoder(Stream.from_byte_array(bytearray(content))).read()
    assert errors == []
    return messages


def test_fit_file_decodes_with_garmin_s_sdk_one_active_set_per_counted_set(api, session):
    resp = api.get(url(session), {"format": "fit"})
    assert resp.status_code == 200, resp.content[:300]
    assert resp["Content-Type"] == "application/vnd.ant.fit"
    assert resp["Content-Disposition"] == f'attachment; filename="session-{session.pk}.fit"'
    assert Decoder(Stream.from_byte_array(bytearray(resp.content))).is_fit()
    messages = decode(resp.content)
    assert messages["file_id_mesgs"][0]["type"] == "activity"
    for name in ("event_mesgs", "record_mesgs", "lap_mesgs", "session_mesgs", "activity_mesgs"):
        assert messages[name], name
    fit_session = messages["session_mesgs"][0]
    assert (fit_session["sport"], fit_session["sub_sport"]) == ("training", "strength_training")
    assert fit_session["start_time"] == AT
    assert fit_session["total_elapsed_time"] == pytest.approx(15.0)
    active = [s for s in messages["set_mesgs"] if s["set_type"] == "active"]
    sets = ExerciseSet.objects.filter(session=session).order_by("index")
    assert [s["repetitions"] for s in active] == [s.reps for s in sets] == [2, 1, 3]
    # FIT times are whole seconds: each active set starts at its set's start, rounded to the second
    assert len(active) == len(sets)
    for fit_set, counted in zip(active, sets, strict=True):
        assert abs((fit_set["start_time"] - counted.performed_at).total_seconds()) <= 0.5
    assert [s["category"] for s in active] == ["squat", "push_up", "unknown"]
    assert [s["duration"] for s in active] == pytest.approx([3.5, 1.5, 5.5])
    rests = [s for s in messages["set_mesgs"] if s["set_type"] == "rest"]
    assert len(rests) == 3  # before each set (the first starts 0.5 s in)


def test_unknown_or_missing_format_is_400_naming_format(api, session):
    for params in ({"format": "gpx"}, {}):
        resp = api.get(url(session), params)
        assert resp.status_code == 400
        assert "health-connect" in " ".join(resp.json()["format"])


def test_a_session_not_counted_is_409(api, user):
    queued = counted_session(user, SPEC, status="queued")
    resp = api.get(url(queued), {"format": "fit"})
    assert resp.status_code == 409
    assert resp.json()["status"] == "queued"


def test_another_users_session_is_404(other_api, session):
    assert other_api.get(url(session), {"format": "health-connect"}).status_code == 404
