"""``/sets/`` and ``/repetitions/``: the repetition history with cursor pagination for app sync."""

import datetime as dt
import zoneinfo

import pytest
from django.utils.dateparse import parse_datetime

from fitness.workouts.models import ExerciseSet, Repetition, SensorSession
from tests.factories import counted_session

pytestmark = pytest.mark.django_db

SETS = "/api/v1/sets/"
REPS = "/api/v1/repetitions/"
UTC = dt.UTC
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def walk(api, url, params=None) -> list[dict]:
    """Every item, following the ``next`` cursor links."""
    items, resp = [], api.get(url, params)
    while True:
        assert resp.status_code == 200, resp.content
        body = resp.json()
        items += body["results"]
        if not body["next"]:
            return items
        resp = api.get(body["next"])


@pytest.fixture
def history(user, other_user):
    """Three sessions of the user a day apart (one set each but the first) and noise."""
    sessions = [
        counted_session(user, [("squat", 3, 0.0), ("jump_rope", 4, 30.0)], at=dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),
        counted_session(user, [("squat", 2, 5.0)], at=dt.datetime(2024, 5, 2, 10, tzinfo=UTC)),
        counted_session(user, [("sit_up", 5, 0.0)], at=dt.datetime(2024, 5, 3, 10, tzinfo=UTC)),
    ]
    counted_session(user, [("squat", 9, 0.0)], status=SensorSession.Status.PROCESSING)
    counted_session(other_user, [("squat", 8, 0.0)], at=dt.datetime(2024, 5, 2, 10, tzinfo=UTC))
    return sessions


class TestSets:
    def test_items_map_onto_health_connect_exercise_segments(self, api, history):
        first = history[0]
        body = api.get(SETS).json()
        assert body["previous"] is None
        items = body["results"]
        assert [(i["exercise"], i["reps"]) for i in items] == [
            ("squat", 3),
            ("jump_rope", 4),
            ("squat", 2),
            ("sit_up", 5),
        ]
        jump = items[1]
        stored = first.sets.get(exercise="jump_rope")
        assert jump["id"] == stored.pk
        assert jump["session"] == str(first.pk)
        assert (jump["index"], jump["method"], jump["start_s"], jump["end_s"]) == (1, "peaks", 30.0, 37.5)
        # ExerciseSegment: startTime, endTime, segmentType, repetitions.
        assert parse_datetime(jump["start_time"]) == dt.datetime(2024, 5, 1, 10, 0, 30, tzinfo=UTC)
        assert parse_datetime(jump["end_time"]) == dt.datetime(2024, 5, 1, 10, 0, 37, 500000, tzinfo=UTC)
        assert (jump["segment_type"], jump["repetitions"]) == (28, 4)  # EXERCISE_SEGMENT_TYPE_JUMP_ROPE
        assert {i["segment_type"] for i in items if i["exercise"] == "squat"} == {51}
        assert api.get(f"{SETS}{stored.pk}/").json() == jump

    def test_cursor_walks_everything_once_in_time_order(self, api, history):
        items = walk(api, SETS, {"page_size": 1})
        assert len(items) == 4
        assert len({i["id"] for i in items}) == 4
        times = [parse_datetime(i["start_time"]) for i in items]
        assert times == sorted(times)
        assert items == api.get(SETS).json()["results"]

    def test_cursor_is_stable_when_new_sets_arrive(self, api, user, history):
        page = api.get(SETS, {"page_size": 2}).json()
        counted_session(user, [("burpee", 6, 0.0)])  # uploaded now: sorts after everything
        rest = walk(api, page["next"])
        assert [i["exercise"] for i in page["results"] + rest] == ["squat", "jump_rope", "squat", "sit_up", "burpee"]

    def test_filters(self, api, user, history):
        user.time_zone = "America/New_York"
        user.save(update_fields=["time_zone"])
        squats = walk(api, SETS, {"exercise": "squat"})
        assert [i["reps"] for i in squats] == [3, 2]
        # Local dates: May 2 in New York is 04:00Z May 2 .. 04:00Z May 3.
        assert [i["reps"] for i in walk(api, SETS, {"from": "2024-05-02", "to": "2024-05-02"})] == [2]
        # Date-times: ``to`` is exclusive; naive ones are local time.
        assert [i["reps"] for i in walk(api, SETS, {"from": "2024-05-01T10:00:30Z", "to": "2024-05-02T10:00:05Z"})] == [
            4
        ]
        assert [i["reps"] for i in walk(api, SETS, {"from": "2024-05-03T06:00:00"})] == [5]
        assert [i["reps"] for i in walk(api, SETS, {"session": str(history[1].pk)})] == [2]
        assert walk(api, SETS, {"from": "2030-01-01"}) == []

    @pytest.mark.parametrize("params", [{"from": "last week"}, {"to": "2024-02-30"}, {"session": "nope"}])
    def test_bad_filters_are_400(self, api, params):
        resp = api.get(SETS, params)
        assert resp.status_code == 400
        assert set(resp.json()) == set(params)

    def test_other_users_sets_are_invisible(self, api, other_api, user, other_user, history):
        others = ExerciseSet.objects.get(user=other_user)
        assert others.pk not in {i["id"] for i in walk(api, SETS)}
        assert api.get(f"{SETS}{others.pk}/").status_code == 404
        assert [i["reps"] for i in walk(other_api, SETS)] == [8]


class TestRepetitions:
    def test_items_are_one_repetition_segments_in_time_order(self, api, history):
        items = walk(api, REPS, {"page_size": 3})
        assert len(items) == 3 + 4 + 2 + 5
        assert len({i["id"] for i in items}) == len(items)
        starts = [parse_datetime(i["start_time"]) for i in items]
        assert starts == sorted(starts)
        second_squat = next(i for i in items if i["session"] == str(history[1].pk) and i["index"] == 1)
        stored = Repetition.objects.get(pk=second_squat["id"])
        # count_result: repetition k of a set starting at s runs from s + 2k to s + 2k + 1.5 seconds.
        assert (second_squat["start_s"], second_squat["end_s"]) == (7.0, 8.5)
        assert second_squat["set"] == stored.set_id
        assert parse_datetime(second_squat["start_time"]) == dt.datetime(2024, 5, 2, 10, 0, 7, tzinfo=UTC)
        assert parse_datetime(second_squat["end_time"]) == dt.datetime(2024, 5, 2, 10, 0, 8, 500000, tzinfo=UTC)
        assert (second_squat["exercise"], second_squat["segment_type"], second_squat["repetitions"]) == ("squat", 51, 1)

    def test_filters_and_isolation(self, api, user, other_user, history):
        jump = history[0].sets.get(exercise="jump_rope")
        assert [i["index"] for i in walk(api, REPS, {"set": jump.pk})] == [0, 1, 2, 3]
        assert len(walk(api, REPS, {"exercise": "squat"})) == 5
        assert len(walk(api, REPS, {"session": str(history[2].pk)})) == 5
        assert len(walk(api, REPS, {"from": "2024-05-02", "to": "2024-05-02"})) == 2
        other_rep = Repetition.objects.filter(set__user=other_user).first()
        assert api.get(f"{REPS}{other_rep.pk}/").status_code == 404
        assert all(i["id"] != other_rep.pk for i in walk(api, REPS))
        other_set = ExerciseSet.objects.get(user=other_user)
        assert walk(api, REPS, {"set": other_set.pk}) == []

    @pytest.mark.parametrize("value", ["-1.5e142", "99999999999999999999", "1.5", "0", "abc"])
    def test_a_set_id_out_of_range_is_400_not_500(self, api, value):
        """Found by the schema fuzzing test: a huge number reached SQLite and overflowed."""
        resp = api.get(REPS, {"set": value})
        assert resp.status_code == 400
        assert list(resp.json()) == ["set"]

    def test_anonymous_is_401(self, anon_client):
        assert anon_client.get(REPS).status_code == 401
        assert anon_client.get(SETS).status_code == 401
