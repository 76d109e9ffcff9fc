import pytest
from django.utils.dateparse import parse_datetime

from fitness.workouts import services
from tests.factories import SensorSessionFactory, count_result

pytestmark = pytest.mark.django_db

URL = "/api/v1/stats/exercises/"


def test_stats_of_the_caller(api, user, other_user):
    session = SensorSessionFactory(user=user)
    services.session_save_result(session_id=session.pk, result=count_result([("sit_up", 6, 0.0), ("sit_up", 9, 30.0)]))
    other = SensorSessionFactory(user=other_user)
    services.session_save_result(session_id=other.pk, result=count_result([("burpee", 5, 0.0)]))

    resp = api.get(URL)
    assert resp.status_code == 200
    [row] = resp.json()
    assert row["exercise"] == "sit_up"
    assert (row["total_reps"], row["sets"], row["sessions"], row["best_set_reps"]) == (15, 2, 1, 9)
    session.refresh_from_db()
    assert row["total_reps"] == session.total_reps
    assert parse_datetime(row["last_performed_at"]) == session.sets.get(index=1).performed_at


def test_anonymous_is_401(anon_client):
    assert anon_client.get(URL).status_code == 401
