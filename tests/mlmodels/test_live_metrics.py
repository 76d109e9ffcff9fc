"""Live accuracy per model version from users' corrections: the API's ``live_metrics`` and the admin."""

from __future__ import annotations

import pytest

from fitness.mlmodels import extensions
from fitness.workouts import live_metrics, services
from fitness.workouts.models import ExerciseSet, SensorSession
from tests.conftest import bearer_client
from tests.factories import SensorSessionFactory, UserFactory, count_result

pytestmark = pytest.mark.django_db


def counted_by(user, version: str, spec, duration_s: float = 200.0) -> SensorSession:
    session = SensorSessionFactory(user=user, duration_s=duration_s)
    services.session_save_result(session_id=session.pk, result=count_result(spec, model_version=version))
    return session


def the_set(session, exercise: str) -> ExerciseSet:
    return ExerciseSet.objects.get(session=session, exercise=exercise)


def patch(client, exercise_set, reps: int) -> None:
    resp = client.patch(f"/api/v1/sets/{exercise_set.pk}/", {"reps": reps}, format="json")
    assert resp.status_code == 200, resp.content


@pytest.fixture
def corrections(register, model_files):
    """Known corrections of sessions counted by tiny-a (and one by tiny-b), through the API."""
    a = register(model_files["a"], stage="production")
    b = register(model_files["b"])
    alice, bob = UserFactory(), UserFactory()
    alice_api, bob_api = bearer_client(alice), bearer_client(bob)

    s1 = counted_by(alice, "tiny-a", [("squat", 10, 0.0), ("sit_up", 8, 30.0), ("jump_rope", 50, 60.0)])
    patch(alice_api, the_set(s1, "squat"), 11)  # off by one
    patch(alice_api, the_set(s1, "sit_up"), 8)  # confirmed
    patch(alice_api, the_set(s1, "jump_rope"), 0)  # phantom set: 50 phantom reps
    missed = {"exercise": "burpee", "reps": 5, "start_s": 170.0, "end_s": 180.0}
    assert alice_api.post(f"/api/v1/sessions/{s1.pk}/sets/", missed, format="json").status_code == 201

    s2 = counted_by(bob, "tiny-a", [("squat", 6, 0.0), ("burpee", 4, 20.0)])
    patch(bob_api, the_set(s2, "burpee"), 7)  # off by three; the squat set stays unreviewed

    s3 = counted_by(bob, "tiny-b", [("squat", 5, 0.0)])
    patch(bob_api, the_set(s3, "squat"), 5)

    s4 = counted_by(alice, "tiny-a", [("squat", 9, 0.0)])  # reviewed, then counted again: left out
    patch(alice_api, the_set(s4, "squat"), 1)
    SensorSession.objects.filter(pk=s4.pk).update(status=SensorSession.Status.QUEUED)
    return {"a": a, "b": b}


def test_live_metrics_of_a_known_set_of_corrections(staff_api, corrections):
    resp = staff_api.get(f"/api/v1/model-versions/{corrections['a'].pk}/")
    assert resp.status_code == 200
    live = resp.json()["live_metrics"]
    overall = {k: v for k, v in live.items() if not k.startswith("by_")}
    assert overall == {
        "sets_counted": 5,  # squat 10, sit-up 8, jump rope 50, squat 6, burpee 4
        "sets_reviewed": 4,
        "sets_corrected": 3,
        "sets": 4,  # true sets: squat 11, sit-up 8, burpee 7, the added burpee 5
        "sets_exact": 0.25,
        "sets_within_1": 0.5,
        "count_mae": 2.25,  # (1 + 0 + 3 + 5) / 4
        "missed_sets": 1,
        "phantom_sets": 1,
        "phantom_reps": 50,
    }
    assert set(live["by_exercise"]) == {"burpee", "jump_rope", "sit_up", "squat"}
    burpee = live["by_exercise"]["burpee"]
    assert (burpee["sets_counted"], burpee["sets"], burpee["missed_sets"], burpee["count_mae"]) == (1, 2, 1, 4.0)
    squat = live["by_exercise"]["squat"]
    assert (squat["sets_counted"], squat["sets_reviewed"], squat["sets_exact"], squat["sets_within_1"]) == (2, 1, 0, 1)
    jump = live["by_exercise"]["jump_rope"]
    assert (jump["sets"], jump["sets_exact"], jump["phantom_sets"], jump["phantom_reps"]) == (0, None, 1, 50)
    assert set(live["by_method"]) == {"classifier", "manual", "peaks"}
    classifier = live["by_method"]["classifier"]
    assert (classifier["sets_counted"], classifier["sets"], classifier["sets_exact"]) == (4, 3, pytest.approx(1 / 3))
    assert live["by_method"]["manual"]["missed_sets"] == 1
    assert live["by_method"]["peaks"]["phantom_reps"] == 50

    other = staff_api.get(f"/api/v1/model-versions/{corrections['b'].pk}/").json()["live_metrics"]
    assert (other["sets_counted"], other["sets_reviewed"], other["sets_corrected"], other["sets_exact"]) == (1, 1, 0, 1)


def test_one_hostile_user_moves_count_mae_by_a_bounded_amount(staff_api, corrections):
    """Issue 29, item 6: one 10,000-repetition set moved a version's count_mae by about 1,000.
    A set's error weighs at most MAX_SET_ERROR, so no number of sets moves it past that."""
    url = f"/api/v1/model-versions/{corrections['a'].pk}/"
    before = staff_api.get(url).json()["live_metrics"]["count_mae"]
    assert before == 2.25  # (1 + 0 + 3 + 5) / 4: 9 over 4 true sets

    mallory = UserFactory()
    mallory_api = bearer_client(mallory)
    session = counted_by(mallory, "tiny-a", [("squat", 1, 0.0)], duration_s=3000.0)
    patch(mallory_api, the_set(session, "squat"), 10)  # 1 counted over 0-1.5 s: at most 15
    for start in range(10, 2000, 1000):  # two sets the counter missed, 10 a second for 1,000 s
        body = {"exercise": "burpee", "reps": 10_000, "start_s": float(start), "end_s": float(start + 1000)}
        assert mallory_api.post(f"/api/v1/sessions/{session.pk}/sets/", body, format="json").status_code == 201

    after = staff_api.get(url).json()["live_metrics"]
    cap = live_metrics.MAX_SET_ERROR
    assert after["sets"] == 7
    assert after["count_mae"] == pytest.approx((9 + 9 + 2 * cap) / 7, abs=0.01)
    assert after["count_mae"] - before <= cap
    assert after["by_exercise"]["burpee"]["count_mae"] <= cap


def test_a_version_without_sessions_has_empty_live_metrics(staff_api, register, model_files):
    version = register(model_files["a"])
    live = staff_api.get(f"/api/v1/model-versions/{version.pk}/").json()["live_metrics"]
    assert live == live_metrics.NO_LIVE_METRICS
    assert (live["sets_counted"], live["sets"], live["sets_exact"]) == (0, 0, None)


def test_one_query_for_all_versions(corrections, django_assert_num_queries):
    versions = [corrections["a"], corrections["b"]]
    with django_assert_num_queries(1):
        found = extensions.version_summaries("live_metrics", versions)
    assert (found[corrections["a"].pk]["sets_counted"], found[corrections["b"].pk]["sets_counted"]) == (5, 1)


def test_the_admin_change_page_shows_them(admin_client, corrections):
    page = admin_client.get(f"/admin/mlmodels/modelversion/{corrections['a'].pk}/change/").content.decode()
    assert "Live metrics" in page
    # all: 5 counted, 4 reviewed, 3 corrected, 4 true sets, 25.0% exact, 50.0% within 1, 1 phantom, 1 missed
    assert "<tr><td>all </td><td>5</td><td>4</td><td>3</td><td>4</td><td>25.0%</td><td>50.0%</td>" in page
    assert "<td>method manual</td>" in page
    empty = admin_client.get(f"/admin/mlmodels/modelversion/{corrections['b'].pk}/change/").content.decode()
    assert "100.0%" in empty
