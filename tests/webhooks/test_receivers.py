"""A session's end fires its owner's webhooks through workouts' ``session_finished`` signal,
and nothing about a webhook can change the session."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from fitness.webhooks import services
from fitness.webhooks.models import Delivery
from fitness.workouts import services as workout_services
from fitness.workouts import tasks as workout_tasks
from fitness.workouts.models import SensorSession
from inference.results import CountingError
from tests.factories import SensorSessionFactory, count_result
from tests.webhooks.conftest import running_receiver, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def counts(monkeypatch):
    """The counter answers 3 squats, or fails when the session's hint is ``burpee``."""

    def pipeline(recording, *, exercise, **_):
        if exercise == "burpee":
            raise CountingError("nothing to count")
        return count_result([("squat", 3, 0.0)])

    monkeypatch.setattr(workout_services.processing, "run_pipeline", pipeline)


def count(session: SensorSession, django_capture_on_commit_callbacks) -> str:
    """Run the real counting task for ``session`` and what it queues after commit."""
    with django_capture_on_commit_callbacks(execute=True):
        return workout_tasks.process_session(str(session.pk))


def test_done_and_failed_sessions_each_fire_only_for_their_event(
    user, other_user, allow_private, eager, counts, django_capture_on_commit_callbacks
):
    with running_receiver() as on_done, running_receiver() as on_failed, running_receiver() as theirs:
        done_sub = subscribe(user, on_done.url, events=["session.done"])
        failed_sub = subscribe(user, on_failed.url, events=["session.failed"])
        subscribe(other_user, theirs.url)

        done = SensorSessionFactory(user=user)
        assert count(done, django_capture_on_commit_callbacks) == "done"
        failed = SensorSessionFactory(user=user, exercise_hint="burpee")
        assert count(failed, django_capture_on_commit_callbacks) == "failed"

        assert [json.loads(r.body)["session_id"] for r in on_done.requests] == [str(done.pk)]
        assert [json.loads(r.body)["session_id"] for r in on_failed.requests] == [str(failed.pk)]
        assert theirs.requests == []

    done_event = json.loads(on_done.requests[0].body)
    assert (done_event["event"], done_event["status"], done_event["total_reps"]) == ("session.done", "done", 3)
    failed_event = json.loads(on_failed.requests[0].body)
    assert (failed_event["event"], failed_event["status"], failed_event["total_reps"]) == (
        "session.failed",
        "failed",
        None,
    )
    for receiver, subscription in ((on_done, done_sub), (on_failed, failed_sub)):
        (request,) = receiver.requests
        digest = hmac.new(subscription.secret.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-Signature-256"], f"sha256={digest}")


def test_nothing_fires_before_the_transaction_commits(user, allow_private, queued, counts):
    subscribe(user, "http://127.0.0.1:9/hook")
    session = SensorSessionFactory(user=user)
    workout_tasks.process_session(str(session.pk))  # the test's transaction never commits
    assert queued == []
    assert not Delivery.objects.exists()


def test_an_endpoint_that_is_down_does_not_change_the_session(
    user, down_url, eager, counts, settings, django_capture_on_commit_callbacks
):
    settings.FITNESS_WEBHOOKS_MAX_ATTEMPTS = 3
    subscribe(user, down_url)
    session = SensorSessionFactory(user=user)
    assert count(session, django_capture_on_commit_callbacks) == "done"
    session.refresh_from_db()
    assert (session.status, session.total_reps, session.error) == ("done", 3, "")
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.attempts.count() == 3


def test_a_broken_receiver_is_logged_and_the_session_stays_done(
    user, allow_private, queued, counts, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broken(*, session):
        raise RuntimeError("webhooks are broken")

    monkeypatch.setattr(services, "deliveries_create", broken)
    subscribe(user, "http://127.0.0.1:9/hook")
    session = SensorSessionFactory(user=user)
    assert count(session, django_capture_on_commit_callbacks) == "done"
    session.refresh_from_db()
    assert session.status == "done"
    assert "its webhooks could not be queued" in caplog.text
    assert "webhooks are broken" in caplog.text


def test_a_user_without_webhooks_costs_one_query(user, django_assert_num_queries):
    session = SensorSessionFactory(user=user, status="done", total_reps=1)
    with django_assert_num_queries(1):
        assert services.deliveries_create(session=session) == []
