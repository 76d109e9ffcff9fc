import io
import uuid
from datetime import timedelta

import pytest
from django.db.models import QuerySet

from fitness.workouts import services, tasks
from fitness.workouts.models import ExerciseSet, Repetition, SensorSession
from inference.io import RecordingError
from inference.results import CountingError
from tests.factories import (
    ExerciseSetFactory,
    RepetitionFactory,
    SensorSessionFactory,
    WorkoutFactory,
    canonical_csv,
    count_result,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """Session ids handed to the Celery task (nothing reaches a broker)."""
    sent: list[str] = []
    monkeypatch.setattr(tasks.process_session, "delay", sent.append)
    return sent


def upload(user, data: bytes | None = None, **kwargs):
    return services.session_create(
        user=user, file=io.BytesIO(canonical_csv() if data is None else data), fmt="csv", **kwargs
    )


class TestSessionCreate:
    def test_stores_file_and_recording_shape(self, user, stored_files, queued, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            session, created = upload(user, exercise_hint="squat", filename="../../etc/passwd.csv")
        assert created
        session.refresh_from_db()
        assert session.status == SensorSession.Status.QUEUED
        assert (session.n_samples, session.duration_s, session.sample_rate_hz) == (100, 9.9, 10.0)
        assert session.channels == ["acc_x", "acc_y", "acc_z"]
        assert session.exercise_hint == "squat"
        assert session.file.name == f"sessions/{user.pk}/{session.pk}.csv"
        assert stored_files()
        assert stored_files()[0].read_bytes() == canonical_csv()
        assert queued == [str(session.pk)]

    def test_queues_only_after_commit(self, user, queued, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            upload(user)
        assert queued == []
        for callback in callbacks:  # the task's, and the upload's count for /metrics
            callback()
        assert len(queued) == 1

    def test_bad_recording_stores_nothing(self, user, stored_files, queued):
        with pytest.raises(RecordingError) as exc:
            upload(user, data=canonical_csv(n_samples=15))
        assert exc.value.field == "file"
        assert "lasts 1.40 s" in exc.value.message
        assert not SensorSession.objects.exists()
        assert stored_files() == []

    def test_unknown_format_names_the_format_field(self, user):
        with pytest.raises(RecordingError) as exc:
            services.session_create(user=user, file=io.BytesIO(canonical_csv()), fmt="xlsx")
        assert exc.value.field == "format"

    def test_client_id_makes_retry_idempotent(self, user, other_user, stored_files, queued):
        client_id = uuid.uuid4()
        first, created1 = upload(user, client_id=client_id)
        again, created2 = upload(user, client_id=client_id)
        theirs, created3 = upload(other_user, client_id=client_id)
        assert (created1, created2, created3) == (True, False, True)
        assert again.pk == first.pk
        assert theirs.pk != first.pk
        assert SensorSession.objects.filter(user=user).count() == 1
        assert len(stored_files()) == 2

    def test_client_id_race_returns_the_winner(self, user, stored_files, monkeypatch):
        client_id = uuid.uuid4()
        winner, _ = upload(user, client_id=client_id)
        # The retry's existence check runs before the winner commits: it sees nothing.
        real_first = QuerySet.first
        calls = []

        def first_missing_once(self):
            calls.append(1)
            return None if len(calls) == 1 else real_first(self)

        monkeypatch.setattr(QuerySet, "first", first_missing_once)
        session, created = upload(user, client_id=client_id)
        assert not created
        assert session.pk == winner.pk
        assert SensorSession.objects.count() == 1
        assert len(stored_files()) == 1  # the loser's file was removed

    def test_workout_of_another_user_is_refused(self, user, other_user):
        with pytest.raises(ValueError, match="another user"):
            upload(user, workout=WorkoutFactory(user=other_user))
        assert not SensorSession.objects.exists()

    def test_workout_of_the_user_is_linked(self, user):
        workout = WorkoutFactory(user=user)
        session, _ = upload(user, workout=workout)
        assert session.workout == workout


class TestSessionProcess:
    def test_saves_sets_and_repetitions(self, monkeypatch):
        session = SensorSessionFactory(exercise_hint="squat")
        seen = {}

        def fake_pipeline(recording, *, exercise, **_):
            seen.update(n=recording.n_samples, exercise=exercise)
            return count_result([("squat", 3, 1.0), ("burpee", 2, 20.0)], model_version="v7")

        monkeypatch.setattr(services.processing, "run_pipeline", fake_pipeline)
        result = services.session_process(session_id=session.pk)
        session.refresh_from_db()
        assert result.pk == session.pk
        assert seen == {"n": 100, "exercise": "squat"}
        assert session.status == SensorSession.Status.DONE
        assert session.total_reps == 5
        assert session.model_version == "v7"
        assert session.error == ""
        assert session.processing_started_at <= session.finished_at
        sets = list(session.sets.order_by("index"))
        assert [(s.exercise, s.reps, s.method) for s in sets] == [
            ("squat", 3, "classifier"),
            ("burpee", 2, "classifier"),
        ]
        assert sets[1].performed_at == session.started_at + timedelta(seconds=20.0)
        assert sets[0].user_id == session.user_id
        assert (sets[0].start_s, sets[0].end_s) == (1.0, 6.5)
        reps = list(Repetition.objects.filter(set=sets[0]).order_by("index"))
        assert [(r.index, r.start_s, r.end_s) for r in reps] == [(0, 1.0, 2.5), (1, 3.0, 4.5), (2, 5.0, 6.5)]

    def test_reprocessing_replaces_the_result(self, monkeypatch):
        session = SensorSessionFactory()
        monkeypatch.setattr(
            services.processing, "run_pipeline", lambda rec, exercise, **_: count_result([("squat", 4, 0.0)])
        )
        services.session_process(session_id=session.pk)
        SensorSession.objects.filter(pk=session.pk).update(status=SensorSession.Status.PROCESSING)
        services.session_process(session_id=session.pk)
        assert ExerciseSet.objects.filter(session=session).count() == 1
        assert Repetition.objects.filter(set__session=session).count() == 4

    def test_done_session_is_not_counted_again(self, monkeypatch):
        session = SensorSessionFactory(status=SensorSession.Status.DONE, total_reps=9)

        def boom(*args, **kwargs):
            raise AssertionError("must not count again")

        monkeypatch.setattr(services.processing, "run_pipeline", boom)
        assert services.session_process(session_id=session.pk).total_reps == 9

    def test_counting_error_marks_failed_with_reason(self, monkeypatch):
        session = SensorSessionFactory()

        def refuse(recording, *, exercise, **_):
            raise CountingError("the model needs the 12 iPhone channels")

        monkeypatch.setattr(services.processing, "run_pipeline", refuse)
        services.session_process(session_id=session.pk)
        session.refresh_from_db()
        assert session.status == SensorSession.Status.FAILED
        assert session.error == "the model needs the 12 iPhone channels"
        assert session.total_reps is None
        assert session.finished_at is not None

    def test_unreadable_stored_file_marks_failed(self, monkeypatch):
        session = SensorSessionFactory()
        session.file.storage.delete(session.file.name)
        session.file.storage.save(session.file.name, io.BytesIO(b"time_s,acc_x\n0,1\n"))
        monkeypatch.setattr(services.processing, "run_pipeline", lambda *a, **k: pytest.fail("not reached"))
        services.session_process(session_id=session.pk)
        session.refresh_from_db()
        assert session.status == SensorSession.Status.FAILED
        assert "samples" in session.error

    def test_unexpected_error_marks_failed_without_raising(self, monkeypatch):
        session = SensorSessionFactory()

        def crash(recording, *, exercise, **_):
            raise MemoryError

        monkeypatch.setattr(services.processing, "run_pipeline", crash)
        services.session_process(session_id=session.pk)
        session.refresh_from_db()
        assert session.status == SensorSession.Status.FAILED
        assert session.error == "internal error while counting (MemoryError)"

    def test_missing_session_is_ignored(self):
        assert services.session_process(session_id=uuid.uuid4()) is None

    def test_task_calls_the_service(self, monkeypatch):
        session = SensorSessionFactory()
        monkeypatch.setattr(
            services.processing, "run_pipeline", lambda rec, exercise, **_: count_result([("sit_up", 2, 0.0)])
        )
        assert tasks.process_session.run(str(session.pk)) == "done"
        session.refresh_from_db()
        assert session.total_reps == 2


def test_session_delete_removes_rows_and_file(stored_files, django_capture_on_commit_callbacks):
    session = SensorSessionFactory()
    RepetitionFactory(set=ExerciseSetFactory(session=session))
    assert len(stored_files()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.session_delete(session=session)
    assert not SensorSession.objects.exists()
    assert not Repetition.objects.exists()
    assert stored_files() == []


class TestRunPipeline:
    @pytest.fixture
    def pipeline(self, monkeypatch):
        from inference import pipeline

        calls = []

        def fake_count(recording, *, model, exercise=None, **_):
            calls.append((model, exercise))
            return count_result([("jump_rope", 3, 0.0)], model_version=None)

        monkeypatch.setattr(pipeline, "count_recording", fake_count)
        return pipeline, calls

    def test_uses_the_default_model(self, pipeline, monkeypatch):
        module, calls = pipeline
        model = object()
        monkeypatch.setattr(module, "get_default_model", lambda: model)
        result = services.run_pipeline(object(), exercise="squat")
        assert calls == [(model, "squat")]
        assert result.model_version is None  # the peak counter's result is not attributed to the model

    def test_missing_model_fails_the_session_with_a_reason(self, pipeline, monkeypatch):
        module, calls = pipeline

        def missing():
            raise FileNotFoundError("default.keras")

        monkeypatch.setattr(module, "get_default_model", missing)
        with pytest.raises(CountingError, match="model is not available"):
            services.run_pipeline(object(), exercise=None)
        assert calls == []

    @pytest.mark.parametrize("hint", ["jump_rope", "squat"])
    def test_missing_model_still_counts_hinted_sessions_by_peaks(self, pipeline, monkeypatch, hint):
        module, calls = pipeline
        monkeypatch.setattr(module, "get_default_model", lambda: (_ for _ in ()).throw(OSError("unreadable")))
        assert services.run_pipeline(object(), exercise=hint).total_reps == 3
        assert calls == [(None, hint)]
