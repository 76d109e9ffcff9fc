"""Evaluating a version on sessions users corrected (their reviewed counts as truth), beside the LOSO figures."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from fitness.mlmodels.models import EvaluationStatus, ModelVersion
from fitness.workouts import services
from fitness.workouts.models import ExerciseSet
from tests.conftest import bearer_client
from tests.factories import SensorSessionFactory, UserFactory, count_result

from .conftest import model_channels_csv

pytestmark = pytest.mark.django_db

URL = "/api/v1/model-versions/"
LOSO = {"sets_within_1": 0.9, "dataset": {"kind": "loso", "description": "from the model's metadata"}}


def recorded(user, spec, *, version: str = "tiny-a"):
    """A done session of 30 s with the models' channels, counted as ``spec`` by ``version``."""
    session = SensorSessionFactory(
        user=user, file=ContentFile(model_channels_csv(30.0), name="rec.csv"), duration_s=29.9, n_samples=300
    )
    services.session_save_result(session_id=session.pk, result=count_result(spec, model_version=version))
    return session


@pytest.fixture
def corrected():
    """One session with corrections (squat 4 -> 5, squat 3 confirmed, sit-up 2 unreviewed, burpee 2 added)
    and one nobody reviewed."""
    user = UserFactory()
    api = bearer_client(user)
    session = recorded(user, [("squat", 4, 0.0), ("squat", 3, 10.0), ("sit_up", 2, 20.0)])
    first, second = ExerciseSet.objects.filter(session=session, exercise="squat").order_by("start_s")
    assert api.patch(f"/api/v1/sets/{first.pk}/", {"reps": 5}, format="json").status_code == 200
    assert api.patch(f"/api/v1/sets/{second.pk}/", {"reps": 3}, format="json").status_code == 200
    added = {"exercise": "burpee", "reps": 2, "start_s": 25.0, "end_s": 29.0}
    assert api.post(f"/api/v1/sessions/{session.pk}/sets/", added, format="json").status_code == 201
    untouched = recorded(user, [("squat", 6, 0.0)])
    return {"session": session, "untouched": untouched}


def test_a_silent_version_misses_every_corrected_set_and_the_loso_figures_stay(
    staff_api, register, model_files, corrected, eager_tasks, django_capture_on_commit_callbacks
):
    version = register(model_files["silent"], stage="staging")  # its classifier never leaves `break`
    ModelVersion.objects.filter(pk=version.pk).update(metrics=LOSO)
    with django_capture_on_commit_callbacks(execute=True):
        resp = staff_api.post(f"{URL}{version.pk}/evaluate/", {"dataset": "corrections"}, format="json")
    assert resp.status_code == 202, resp.content
    version.refresh_from_db()
    assert version.evaluation_status == EvaluationStatus.DONE, version.evaluation_error
    metrics = version.metrics
    assert {k: metrics[k] for k in LOSO} == LOSO  # the LOSO figures are kept beside
    figures = metrics["corrections"]
    assert figures["dataset"] == {"kind": "corrections", "sessions": [str(corrected["session"].pk)], "true_sets": 3}
    # True sets: squat 5, squat 3, burpee 2 (the unreviewed sit-up set is not scored); none counted.
    assert {k: figures[k] for k in ("sets", "sets_exact", "sets_within_1", "missed_sets", "phantom_reps")} == {
        "sets": 3,
        "sets_exact": 0.0,
        "sets_within_1": 0.0,
        "missed_sets": 3,
        "phantom_reps": 0,
    }
    assert figures["count_mae"] == pytest.approx(10 / 3)
    assert (figures["sets_counted"], figures["recordings"]) == (0, 1)
    detail = staff_api.get(f"{URL}{version.pk}/").json()
    assert detail["metrics"]["corrections"]["sets"] == 3


def test_named_sessions_must_be_done_and_corrected(staff_api, register, model_files, corrected):
    version = register(model_files["a"])
    body = {"dataset": "corrections", "sessions": [str(corrected["untouched"].pk)]}
    resp = staff_api.post(f"{URL}{version.pk}/evaluate/", body, format="json")
    assert resp.status_code == 400
    assert "has no set a user reviewed" in resp.json()["sessions"][0]
    version.refresh_from_db()
    assert version.evaluation_status == EvaluationStatus.NEVER


def test_without_corrections_there_is_nothing_to_evaluate(staff_api, register, model_files):
    version = register(model_files["a"])
    resp = staff_api.post(f"{URL}{version.pk}/evaluate/", {"dataset": "corrections"}, format="json")
    assert resp.status_code == 400
    assert "no session has sets users reviewed" in resp.json()["sessions"][0]


def test_an_unknown_dataset_kind_is_a_400_naming_it(staff_api, register, model_files):
    version = register(model_files["a"])
    resp = staff_api.post(f"{URL}{version.pk}/evaluate/", {"dataset": "mystery"}, format="json")
    assert resp.status_code == 400
    assert "corrections" in resp.json()["dataset"][0]


def test_the_admin_action_queues_it(admin_client, register, model_files, corrected, monkeypatch):
    from fitness.mlmodels import tasks

    sent = []
    monkeypatch.setattr(tasks.evaluate_model_version, "delay", lambda *a: sent.append(a))
    version = register(model_files["a"])
    resp = admin_client.post(
        "/admin/mlmodels/modelversion/",
        {"action": "evaluate_on_corrections", "_selected_action": [version.pk]},
        follow=True,
    )
    assert resp.status_code == 200
    version.refresh_from_db()
    assert version.evaluation_status == EvaluationStatus.QUEUED


def test_corrected_recordings_are_read_one_at_a_time(model_files):
    """Issue 29 item 4: twelve corrected 20 MiB uploads took the admin worker from 332 to 759 MiB,
    as ``load`` read every recording before counting any. Now the peak follows one recording."""
    import tracemalloc

    from django.utils import timezone

    from fitness.workouts.services import evaluation_corrections

    csv = ContentFile(model_channels_csv(600.0, rate_hz=100.0), name="long.csv")  # 10 min, 60,000 samples
    user = UserFactory()
    sessions = []
    for _ in range(6):
        session = SensorSessionFactory(user=user, file=ContentFile(csv.read(), name="long.csv"), n_samples=60_000)
        csv.seek(0)
        services.session_save_result(session_id=session.pk, result=count_result([("squat", 4, 0.0)]))
        sessions.append(str(session.pk))
    ExerciseSet.objects.filter(session__in=sessions).update(reviewed_at=timezone.now())

    def peak_bytes(ids: list[str]) -> int:
        tracemalloc.start()
        try:
            items, described = evaluation_corrections.load({"kind": "corrections", "sessions": ids})
            assert described["true_sets"] == len(ids)
            n = 0
            for item in items:  # as inference.scoring.evaluate_on_sets consumes them
                assert item.sets[0]["reps"] == 4
                n += len(item.recording.time_s)
                del item
            assert n == 60_000 * len(ids)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    one, six = peak_bytes(sessions[:1]), peak_bytes(sessions)
    # Each recording holds about 2.6 MB of samples and timestamps; all six at once would add 13 MB.
    assert six < one + 4_000_000, (one, six)
