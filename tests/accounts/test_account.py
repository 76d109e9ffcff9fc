"""``/api/v1/account/``: profile time zone, full export, deletion with all data."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from fitness.workouts.models import ExerciseSet, Repetition, SensorSession, Workout
from tests.factories import WorkoutFactory, canonical_csv, counted_session

pytestmark = pytest.mark.django_db

ACCOUNT = "/api/v1/account/"
EXPORT = "/api/v1/account/export/"


class TestProfile:
    def test_get_and_set_time_zone(self, api, user):
        body = api.get(ACCOUNT).json()
        assert (body["id"], body["username"], body["time_zone"]) == (user.pk, user.username, "UTC")
        resp = api.patch(ACCOUNT, {"time_zone": "Europe/Berlin"})
        assert resp.status_code == 200
        assert resp.json()["time_zone"] == "Europe/Berlin"
        user.refresh_from_db()
        assert user.time_zone == "Europe/Berlin"
        assert api.get("/api/v1/stats/streaks/").json()["time_zone"] == "Europe/Berlin"

    @pytest.mark.parametrize("value", ["Mars/Olympus", "", "x" * 70])
    def test_unknown_time_zone_is_400(self, api, user, value):
        resp = api.patch(ACCOUNT, {"time_zone": value})
        assert resp.status_code == 400
        assert "time_zone" in resp.json()
        user.refresh_from_db()
        assert user.time_zone == "UTC"

    def test_anonymous_is_401(self, anon_client):
        assert anon_client.get(ACCOUNT).status_code == 401
        assert anon_client.delete(ACCOUNT).status_code == 401
        assert anon_client.get(EXPORT).status_code == 401


class TestExport:
    def test_everything_of_the_user_and_nothing_else(self, api, user, other_user):
        workout = WorkoutFactory(user=user, notes="legs day")
        session = counted_session(user, [("squat", 3, 0.0), ("jump_rope", 5, 30.0)])
        SensorSession.objects.filter(pk=session.pk).update(workout=workout)
        failed = counted_session(user, [], status=SensorSession.Status.FAILED)
        counted_session(other_user, [("burpee", 4, 0.0)])
        WorkoutFactory(user=other_user, notes="not mine")

        resp = api.get(EXPORT)
        assert resp.status_code == 200
        assert "attachment" in resp["Content-Disposition"]
        body = json.loads(resp.content)
        assert body["format"] == "fitness-export/1"
        assert body["user"]["username"] == user.username
        assert body["user"]["time_zone"] == "UTC"
        assert [w["notes"] for w in body["workouts"]] == ["legs day"]
        assert {s["id"] for s in body["sessions"]} == {str(session.pk), str(failed.pk)}
        exported = next(s for s in body["sessions"] if s["id"] == str(session.pk))
        assert exported["workout"] == workout.pk
        assert (exported["status"], exported["total_reps"], exported["format"]) == ("done", 8, "csv")
        assert [(s["exercise"], s["reps"], len(s["repetitions"])) for s in exported["sets"]] == [
            ("squat", 3, 3),
            ("jump_rope", 5, 5),
        ]
        assert exported["sets"][1]["repetitions"][0] == {"index": 0, "start_s": 30.0, "end_s": 31.5}
        assert [(s["counted_reps"], s["origin"], s["reviewed_at"]) for s in exported["sets"]] == [
            (3, "counter", None),
            (5, "counter", None),
        ]
        n_reps = sum(len(s["repetitions"]) for x in body["sessions"] for s in x["sets"])
        assert n_reps == Repetition.objects.filter(set__user=user).count()
        assert "burpee" not in resp.content.decode()

        # The raw recording is linked, and the link serves it to its owner only.
        assert exported["recording_url"] == f"http://testserver/api/v1/sessions/{session.pk}/recording/"
        download = api.get(exported["recording_url"])
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == canonical_csv()

    def test_corrections_are_exported(self, api, user):
        session = counted_session(user, [("squat", 3, 0.0)])
        set_id = session.sets.get().pk
        assert api.patch(f"/api/v1/sets/{set_id}/", {"reps": 5}, format="json").status_code == 200
        added = api.post(
            f"/api/v1/sessions/{session.pk}/sets/",
            {"exercise": "sit_up", "reps": 2, "start_s": 6.0, "end_s": 9.0},
            format="json",
        )
        assert added.status_code == 201, added.content

        sets = api.get(EXPORT).json()["sessions"][0]["sets"]
        by_id = {s["id"]: s for s in sets}
        corrected, user_added = by_id[set_id], by_id[added.json()["id"]]
        assert (corrected["reps"], corrected["counted_reps"], corrected["origin"]) == (5, 3, "counter")
        assert corrected["reviewed_at"]
        assert (user_added["exercise"], user_added["reps"], user_added["counted_reps"]) == ("sit_up", 2, None)
        assert user_added["origin"] == "user"

    def test_empty_account(self, api, user):
        body = api.get(EXPORT).json()
        assert (body["workouts"], body["sessions"]) == ([], [])


class TestDelete:
    def test_account_and_all_its_data_go(
        self, api, user, other_user, client_for, stored_files, django_capture_on_commit_callbacks
    ):
        cache.clear()
        mine = [counted_session(user, [("squat", 3, 0.0)]), counted_session(user, [("sit_up", 2, 0.0)])]
        WorkoutFactory(user=user)
        theirs = counted_session(other_user, [("burpee", 4, 0.0)])
        assert api.get(f"/api/v1/sessions/{mine[0].pk}/plot.png").status_code == 200
        assert len(stored_files()) == 3

        with django_capture_on_commit_callbacks(execute=True):
            resp = api.delete(ACCOUNT)
        assert resp.status_code == 204
        assert not get_user_model().objects.filter(pk=user.pk).exists()
        assert not SensorSession.objects.filter(user_id=user.pk).exists()
        assert not ExerciseSet.objects.filter(user_id=user.pk).exists()
        assert not Repetition.objects.filter(set__session__in=[s.pk for s in mine]).exists()
        assert not Workout.objects.filter(user_id=user.pk).exists()
        assert [str(p) for p in stored_files()] == [theirs.file.path]
        assert len(cache._cache) == 0  # the cached plot went too
        # The old token no longer works; the other user is untouched.
        assert api.get(ACCOUNT).status_code == 401
        assert client_for(other_user).get("/api/v1/stats/exercises/").json()[0]["total_reps"] == 4
        assert Repetition.objects.filter(set__user=other_user).count() == 4
