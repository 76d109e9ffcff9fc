import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from fitness.stats.selectors import local_midnight, local_today
from fitness.workouts import services
from fitness.workouts.models import SensorSession
from fitness.workouts.services import sessions_reprocess
from tests.factories import SensorSessionFactory, count_result, counted_session

pytestmark = pytest.mark.django_db

EXERCISES = "/api/v1/stats/exercises/"
TIMESERIES = "/api/v1/stats/timeseries/"
RECORDS = "/api/v1/stats/records/"
STREAKS = "/api/v1/stats/streaks/"
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def ny(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NEW_YORK)


def set_tz(user, name: str) -> None:
    user.time_zone = name
    user.save(update_fields=["time_zone"])


def totals(api) -> dict[str, tuple[int, int]]:
    return {row["exercise"]: (row["total_reps"], row["sets"]) for row in api.get(EXERCISES).json()}


@pytest.mark.parametrize("url", [EXERCISES, TIMESERIES, RECORDS, STREAKS])
def test_anonymous_is_401(anon_client, url):
    assert anon_client.get(url).status_code == 401


@pytest.mark.parametrize("url", [EXERCISES, TIMESERIES, RECORDS, STREAKS])
def test_other_users_data_is_never_visible(api, other_user, url):
    counted_session(other_user, [("squat", 25, 0.0), ("jump_rope", 80, 60.0)])
    body = api.get(url).json()
    if url in {EXERCISES, RECORDS}:
        assert body == []
    elif url == TIMESERIES:
        assert all(r["reps"] == 0 and r["sets"] == 0 for r in body["results"])
    else:
        assert body["days"]["total"] == 0
        assert body["weeks"]["total"] == 0


class TestExercises:
    def test_stats_of_the_caller(self, api, user, other_user):
        session = SensorSessionFactory(user=user)
        services.session_save_result(
            session_id=session.pk, result=count_result([("sit_up", 6, 0.0), ("sit_up", 9, 30.0)])
        )
        other = SensorSessionFactory(user=other_user)
        services.session_save_result(session_id=other.pk, result=count_result([("burpee", 5, 0.0)]))

        resp = api.get(EXERCISES)
        assert resp.status_code == 200
        [row] = resp.json()
        assert row["exercise"] == "sit_up"
        assert (row["total_reps"], row["sets"], row["sessions"], row["best_set_reps"]) == (15, 2, 1, 9)
        assert row["avg_reps_per_set"] == 7.5
        session.refresh_from_db()
        assert row["total_reps"] == session.total_reps
        assert parse_datetime(row["last_performed_at"]) == session.sets.get(index=1).performed_at
        assert parse_datetime(row["first_performed_at"]) == session.sets.get(index=0).performed_at

    def test_date_range_in_local_days(self, api, user):
        set_tz(user, "America/New_York")
        counted_session(user, [("squat", 4, 0.0)], at=ny(2024, 3, 3, 23, 50))
        counted_session(user, [("squat", 6, 0.0), ("sit_up", 5, 10.0)], at=ny(2024, 3, 4, 0, 10))
        assert totals(api) == {"sit_up": (5, 1), "squat": (10, 2)}
        body = api.get(EXERCISES, {"from": "2024-03-04", "to": "2024-03-04"}).json()
        assert [(r["exercise"], r["total_reps"]) for r in body] == [("sit_up", 5), ("squat", 6)]
        body = api.get(EXERCISES, {"to": "2024-03-03", "exercise": "squat"}).json()
        assert [(r["exercise"], r["total_reps"]) for r in body] == [("squat", 4)]
        assert api.get(EXERCISES, {"from": "2024-03-05"}).json() == []

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"from": "yesterday"}, "from"),
            ({"to": "2024-02-30"}, "to"),
            ({"from": "2024-03-05", "to": "2024-03-04"}, "to"),
        ],
    )
    def test_bad_range_is_400(self, api, params, field):
        resp = api.get(EXERCISES, params)
        assert resp.status_code == 400
        assert field in resp.json()


@pytest.mark.parametrize("url", [EXERCISES, TIMESERIES])
def test_exercise_outside_the_catalog_is_400_naming_it(api, user, url):
    counted_session(user, [("squat", 4, 0.0)], at=ny(2024, 3, 3, 12, 0))
    resp = api.get(url, {"exercise": "squatz"})
    assert resp.status_code == 400
    assert "exercise" in resp.json()
    assert "/api/v1/exercises/" in resp.json()["exercise"][0]
    assert api.get(url, {"exercise": "squat"}).status_code == 200
    assert api.get(url, {"exercise": "unknown"}).status_code == 200


class TestTimeseries:
    def test_local_midnight_and_empty_periods(self, api, user):
        set_tz(user, "America/New_York")
        counted_session(user, [("squat", 4, 0.0)], at=ny(2024, 3, 3, 23, 50))  # Sunday, 04:50Z on Mar 4
        counted_session(user, [("squat", 6, 0.0), ("burpee", 2, 30.0)], at=ny(2024, 3, 4, 0, 10))  # Monday

        body = api.get(TIMESERIES, {"period": "day", "from": "2024-03-02", "to": "2024-03-05"}).json()
        assert body["period"] == "day"
        assert body["time_zone"] == "America/New_York"
        assert (body["from"], body["to"], body["exercise"]) == ("2024-03-02", "2024-03-05", None)
        assert [(r["start"], r["reps"], r["sets"]) for r in body["results"]] == [
            ("2024-03-02", 0, 0),
            ("2024-03-03", 4, 1),
            ("2024-03-04", 8, 2),
            ("2024-03-05", 0, 0),
        ]
        body = api.get(TIMESERIES, {"period": "week", "from": "2024-02-20", "to": "2024-03-12", "exercise": "squat"})
        assert [(r["start"], r["reps"]) for r in body.json()["results"]] == [
            ("2024-02-19", 0),
            ("2024-02-26", 4),
            ("2024-03-04", 6),
            ("2024-03-11", 0),
        ]

    def test_defaults_end_today_in_the_users_time_zone(self, api, user):
        set_tz(user, "Pacific/Kiritimati")  # UTC+14: often a day ahead of UTC
        today = local_today(tz=zoneinfo.ZoneInfo("Pacific/Kiritimati"))
        counted_session(user, [("squat", 3, 0.0)], at=timezone.now() - dt.timedelta(minutes=1))
        days = api.get(TIMESERIES).json()["results"]
        assert len(days) == 30
        assert days[-1]["start"] == today.isoformat()
        assert days[-1]["reps"] == 3 or days[-2]["reps"] == 3  # a minute ago may be yesterday
        months = api.get(TIMESERIES, {"period": "month"}).json()["results"]
        assert len(months) == 12
        assert months[-1]["start"] == today.replace(day=1).isoformat()

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"period": "year"}, "period"),
            ({"from": "2024-13-01"}, "from"),
            ({"from": "2024-03-05", "to": "2024-03-04"}, "to"),
            ({"from": "1900-01-01", "to": "2024-01-01"}, "from"),  # too many days
        ],
    )
    def test_bad_params_are_400(self, api, params, field):
        resp = api.get(TIMESERIES, params)
        assert resp.status_code == 400
        assert field in resp.json()


class TestRecordsAndStreaks:
    def test_records(self, api, user):
        session = counted_session(user, [("jump_rope", 30, 0.0), ("squat", 8, 100.0)])
        body = api.get(RECORDS).json()
        kinds = {(r["kind"], r["exercise"]): r for r in body}
        assert set(kinds) == {
            ("most_reps", "jump_rope"),
            ("most_reps", "squat"),
            ("longest_run", "jump_rope"),
            ("fastest_cadence", "jump_rope"),
            ("fastest_cadence", "squat"),
        }
        most = kinds[("most_reps", "squat")]
        assert most["value"] == 8
        assert most["session"] == str(session.pk)
        assert most["set"] == session.sets.get(exercise="squat").pk
        assert parse_datetime(most["performed_at"]) == session.started_at + dt.timedelta(seconds=100)
        assert kinds[("fastest_cadence", "squat")]["value"] == pytest.approx(8 * 60 / 15.5, abs=0.01)

    def test_streaks_in_local_days(self, api, user):
        set_tz(user, "America/New_York")
        today = local_today(tz=NEW_YORK)
        for back in (0, 1, 2, 5, 6):
            at = local_midnight(today - dt.timedelta(days=back), NEW_YORK) + dt.timedelta(hours=12)
            counted_session(user, [("squat", 3, 0.0)], at=at)
        body = api.get(STREAKS).json()
        assert body["today"] == today.isoformat()
        assert body["time_zone"] == "America/New_York"
        assert body["days"]["current"] == 3
        assert body["days"]["longest"] == 3
        assert body["days"]["current_start"] == (today - dt.timedelta(days=2)).isoformat()
        assert body["days"]["total"] == 5
        assert body["weeks"]["current"] >= 1


class TestConsistency:
    """Statistics always equal what the sessions say, after uploads, deletes and reprocessing."""

    def test_after_delete(self, api, user, django_capture_on_commit_callbacks):
        keep = counted_session(user, [("squat", 5, 0.0)])
        gone = counted_session(user, [("squat", 7, 0.0), ("burpee", 3, 30.0)])
        assert totals(api) == {"burpee": (3, 1), "squat": (12, 2)}
        with django_capture_on_commit_callbacks(execute=True):
            assert api.delete(f"/api/v1/sessions/{gone.pk}/").status_code == 204
        assert totals(api) == {"squat": (5, 1)}
        assert [r["exercise"] for r in api.get(RECORDS).json() if r["kind"] == "most_reps"] == ["squat"]
        assert api.get(STREAKS).json()["days"]["total"] == 1
        assert keep.total_reps == 5

    def test_during_and_after_reprocess(self, api, user, monkeypatch):
        session = counted_session(user, [("squat", 10, 0.0), ("squat", 9, 60.0)])
        counted_session(user, [("sit_up", 4, 0.0)])
        assert totals(api) == {"squat": (19, 2), "sit_up": (4, 1)}

        queued, _ = sessions_reprocess(session_ids=[session.pk])
        assert queued == [str(session.pk)]
        # While it is re-counted, its old result is not part of the statistics.
        assert totals(api) == {"sit_up": (4, 1)}

        monkeypatch.setattr(
            services.processing, "run_pipeline", lambda recording, exercise, **_: count_result([("squat", 12, 5.0)])
        )
        services.session_process(session_id=session.pk)
        assert totals(api) == {"squat": (12, 1), "sit_up": (4, 1)}
        day = api.get(TIMESERIES).json()["results"]
        assert sum(r["reps"] for r in day) == 16
        most = {r["exercise"]: r["value"] for r in api.get(RECORDS).json() if r["kind"] == "most_reps"}
        assert most == {"squat": 12, "sit_up": 4}

    def test_queued_processing_and_failed_sessions_do_not_count(self, api, user):
        counted_session(user, [("squat", 5, 0.0)], status=SensorSession.Status.QUEUED)
        counted_session(user, [("squat", 6, 0.0)], status=SensorSession.Status.PROCESSING)
        failed = counted_session(user, [("squat", 7, 0.0)])
        services.session_mark_failed(session_id=failed.pk, error="bad")
        assert totals(api) == {}
        assert api.get(RECORDS).json() == []
