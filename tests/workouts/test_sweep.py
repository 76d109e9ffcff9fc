"""Nothing stays queued or processing for ever: publishing failures, the periodic sweep,
the attempt limit and the time limits (in-process; tests/faults runs real workers)."""

from __future__ import annotations

import datetime as dt

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from kombu.exceptions import OperationalError

from fitness.mlmodels import tasks as registry_tasks
from fitness.workouts import services, tasks
from fitness.workouts.models import ExerciseSet, SensorSession
from fitness.workouts.services import sessions_reprocess
from tests.factories import SensorSessionFactory, canonical_csv, count_result, counted_session
from workers.celery import app

pytestmark = pytest.mark.django_db


class Broker:
    """Stands in for ``process_session.delay``: records ids, or fails like an unreachable broker."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.down = False

    def delay(self, session_id: str) -> None:
        if self.down:
            raise OperationalError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")
        self.sent.append(str(session_id))


@pytest.fixture
def broker(monkeypatch) -> Broker:
    fake = Broker()
    monkeypatch.setattr(tasks.process_session, "delay", fake.delay)
    monkeypatch.setattr(tasks.reprocess_session, "delay", fake.delay)
    return fake


def aged(session: SensorSession, *, queued_s: float = 0, started_s: float | None = None, status: str | None = None):
    now = timezone.now()
    fields = {"queued_at": now - dt.timedelta(seconds=queued_s)}
    if started_s is not None:
        fields["processing_started_at"] = now - dt.timedelta(seconds=started_s)
    if status is not None:
        fields["status"] = status
    SensorSession.objects.filter(pk=session.pk).update(**fields)
    session.refresh_from_db()
    return session


class TestBrokerDownAtUpload:
    def test_upload_is_accepted_and_stays_queued(self, api, broker, stored_files, django_capture_on_commit_callbacks):
        broker.down = True
        with django_capture_on_commit_callbacks(execute=True):
            resp = api.post(
                "/api/v1/sessions/",
                {"file": SimpleUploadedFile("r.csv", canonical_csv(), "text/csv"), "format": "csv"},
                format="multipart",
            )
        assert resp.status_code == 202, resp.content
        session = SensorSession.objects.get(pk=resp.json()["id"])
        assert session.status == SensorSession.Status.QUEUED
        assert len(stored_files()) == 1
        assert broker.sent == []

    def test_the_sweep_queues_it_once_the_broker_is_back(self, broker, django_capture_on_commit_callbacks):
        session = aged(SensorSessionFactory(), queued_s=600)
        broker.down = True
        with django_capture_on_commit_callbacks(execute=True):
            services.sessions_requeue_stale(queued_after_s=300)
        assert broker.sent == []
        session.refresh_from_db()
        assert session.status == SensorSession.Status.QUEUED

        broker.down = False
        aged(session, queued_s=600)
        with django_capture_on_commit_callbacks(execute=True):
            assert services.sessions_requeue_stale(queued_after_s=300) == [str(session.pk)]
        assert broker.sent == [str(session.pk)]

    def test_reprocess_with_the_broker_down_leaves_sessions_queued(self, broker, django_capture_on_commit_callbacks):
        session = counted_session(SensorSessionFactory().user, [("squat", 3, 0.0)])
        broker.down = True
        with django_capture_on_commit_callbacks(execute=True):
            queued, _ = sessions_reprocess(session_ids=[session.pk])
        assert queued == [str(session.pk)]
        session.refresh_from_db()
        assert (session.status, session.attempts) == (SensorSession.Status.QUEUED, 0)

    def test_an_evaluation_that_cannot_be_queued_says_so(self, monkeypatch, django_capture_on_commit_callbacks):
        from fitness.mlmodels.models import EvaluationStatus, ModelVersion
        from fitness.mlmodels.services import model_version_queue_evaluation

        def down(*args):
            raise OperationalError("Connection refused")

        monkeypatch.setattr(registry_tasks.evaluate_model_version, "delay", down)
        version = ModelVersion.objects.create(version="v-test", file="models/x.keras", checksum="0" * 64,
                                              size_bytes=1, metadata={})  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            model_version_queue_evaluation(version=version, user=None)
        version.refresh_from_db()
        assert version.evaluation_status == EvaluationStatus.FAILED
        assert "could not be queued" in version.evaluation_error


class TestSweep:
    def test_only_stale_sessions_are_queued_again(self, broker, django_capture_on_commit_callbacks):
        stale_queued = aged(SensorSessionFactory(), queued_s=400)
        fresh_queued = aged(SensorSessionFactory(), queued_s=10)
        lost_processing = aged(SensorSessionFactory(), started_s=500, status="processing")
        busy_processing = aged(SensorSessionFactory(), started_s=30, status="processing")
        done = aged(SensorSessionFactory(), queued_s=9999, status="done")
        failed = aged(SensorSessionFactory(), queued_s=9999, status="failed")

        with django_capture_on_commit_callbacks(execute=True):
            requeued = services.sessions_requeue_stale(queued_after_s=300, processing_after_s=420)

        assert sorted(requeued) == sorted([str(stale_queued.pk), str(lost_processing.pk)])
        assert sorted(broker.sent) == sorted(requeued)
        statuses = dict(SensorSession.objects.values_list("pk", "status"))
        assert statuses[lost_processing.pk] == "queued"
        assert statuses[busy_processing.pk] == "processing"
        assert statuses[fresh_queued.pk] == "queued"
        assert (statuses[done.pk], statuses[failed.pk]) == ("done", "failed")
        # Queued again just now: the next sweep leaves them alone.
        with django_capture_on_commit_callbacks(execute=True):
            assert services.sessions_requeue_stale(queued_after_s=300, processing_after_s=420) == []

    def test_defaults_come_from_the_settings(self, broker, settings, django_capture_on_commit_callbacks):
        settings.FITNESS_SWEEP_QUEUED_AFTER_S = 5
        session = aged(SensorSessionFactory(), queued_s=6)
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.requeue_stale_sessions() == 1
        assert broker.sent == [str(session.pk)]
        assert settings.FITNESS_SWEEP_PROCESSING_AFTER_S > settings.CELERY_TASK_TIME_LIMIT

    def test_beat_runs_the_sweep(self, settings):
        entry = settings.CELERY_BEAT_SCHEDULE["requeue-stale-sessions"]
        assert entry["task"] == tasks.requeue_stale_sessions.name
        assert entry["schedule"] == settings.FITNESS_SWEEP_INTERVAL_S
        assert app.conf.beat_schedule["requeue-stale-sessions"]["task"] == tasks.requeue_stale_sessions.name


class TestWorkerFaults:
    def test_a_redelivered_task_counts_once(self, monkeypatch):
        """The worker died after the session moved to processing: the next run replaces, never adds."""
        monkeypatch.setattr(
            services.processing, "run_pipeline", lambda rec, exercise, **_: count_result([("squat", 4, 0.0)])
        )
        session = SensorSessionFactory()
        services.session_process(session_id=session.pk)
        SensorSession.objects.filter(pk=session.pk).update(status="processing")  # as if it died before the ack
        again = services.session_process(session_id=session.pk)
        assert (again.status, again.total_reps, again.attempts) == ("done", 4, 2)
        assert ExerciseSet.objects.filter(session=session).count() == 1
        # A duplicate of the message after it is done changes nothing.
        assert services.session_process(session_id=session.pk).attempts == 2

    def test_too_many_interrupted_attempts_fail_with_the_reason(self, settings, monkeypatch):
        settings.FITNESS_MAX_COUNT_ATTEMPTS = 3
        monkeypatch.setattr(services.processing, "run_pipeline", lambda *a, **k: pytest.fail("must not count"))
        session = aged(SensorSessionFactory(attempts=3), started_s=999, status="processing")
        result = services.session_process(session_id=session.pk)
        assert result.status == "failed"
        assert "interrupted 3 times" in result.error

    def test_soft_time_limit_fails_the_session_with_the_reason(self, settings, monkeypatch):
        def slow(recording, exercise, **_):
            raise SoftTimeLimitExceeded()

        monkeypatch.setattr(services.processing, "run_pipeline", slow)
        result = services.session_process(session_id=SensorSessionFactory().pk)
        assert result.status == "failed"
        assert f"time limit ({settings.CELERY_TASK_SOFT_TIME_LIMIT} s)" in result.error

    def test_a_task_that_raises_marks_the_session_failed(self, monkeypatch):
        def boom(recording, exercise, **_):
            raise ZeroDivisionError("bug")

        monkeypatch.setattr(services.processing, "run_pipeline", boom)
        session = SensorSessionFactory()
        assert tasks.process_session(str(session.pk)) == "failed"
        session.refresh_from_db()
        assert session.error == "internal error while counting (ZeroDivisionError)"

    def test_counting_tasks_are_acked_late_given_back_when_the_worker_is_lost_and_time_limited(self, settings):
        for task in (tasks.process_session, tasks.shadow_count_session):
            assert task.acks_late is True
            assert task.reject_on_worker_lost is True
            soft = task.soft_time_limit or app.conf.task_soft_time_limit
            hard = task.time_limit or app.conf.task_time_limit
            assert 0 < soft < hard
        assert app.conf.task_time_limit == settings.CELERY_TASK_TIME_LIMIT
        # Every pool process is replaced once its memory passes the ceiling (issue 21, item 17).
        assert 0 < app.conf.worker_max_memory_per_child == settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD
        assert app.conf.task_soft_time_limit == settings.CELERY_TASK_SOFT_TIME_LIMIT
        assert app.conf.task_reject_on_worker_lost is True
        assert registry_tasks.evaluate_model_version.time_limit
        assert tasks.requeue_stale_sessions.time_limit
