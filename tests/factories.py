"""factory-boy factories for the project's models."""

import datetime as dt
import math

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from fitness.workouts.models import ExerciseSet, Repetition, SensorSession, Workout
from inference import results

PASSWORD = "correct-horse-battery-9"


def canonical_csv(n_samples: int = 100, rate_hz: float = 10.0) -> bytes:
    """A valid canonical CSV: ``time_s`` and three accelerometer channels."""
    lines = ["time_s,acc_x,acc_y,acc_z"]
    lines += [f"{i / rate_hz:.3f},{0.1 * (i % 7):.3f},0.0,9.81" for i in range(n_samples)]
    return ("\n".join(lines) + "\n").encode()


def rhythmic_csv(duration_s: float = 40.0, rate_hz: float = 50.0, cycle_hz: float = 0.5) -> bytes:
    """A canonical CSV (``acc_x/y/z``, m/s^2) of one steady movement: a ``cycle_hz`` sine on x and z
    over gravity, for the whole ``duration_s``."""
    lines = ["time_s,acc_x,acc_y,acc_z"]
    for i in range(round(duration_s * rate_hz)):
        t = i / rate_hz
        a = 3.0 * math.sin(2 * math.pi * cycle_hz * t)
        lines.append(f"{t:.3f},{a:.4f},0.0,{9.81 + 0.5 * a:.4f}")
    return ("\n".join(lines) + "\n").encode()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"athlete{n}")
    password = factory.django.Password(PASSWORD)


class WorkoutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workout

    user = factory.SubFactory(UserFactory)
    date = factory.LazyFunction(lambda: dt.date(2024, 5, 1))
    notes = "legs"


class SensorSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SensorSession

    user = factory.SubFactory(UserFactory)
    file = factory.LazyFunction(lambda: ContentFile(canonical_csv(), name="rec.csv"))
    format = "csv"
    n_samples = 100
    duration_s = 9.9
    sample_rate_hz = 10.0
    channels = factory.LazyFunction(lambda: ["acc_x", "acc_y", "acc_z"])


class ExerciseSetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExerciseSet

    session = factory.SubFactory(SensorSessionFactory)
    user = factory.SelfAttribute("session.user")
    index = factory.Sequence(lambda n: n)
    exercise = "squat"
    method = "classifier"
    reps = 5
    start_s = 0.0
    end_s = 10.0
    performed_at = factory.LazyFunction(timezone.now)


class RepetitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Repetition

    set = factory.SubFactory(ExerciseSetFactory)
    index = factory.Sequence(lambda n: n)
    start_s = 0.0
    end_s = 1.0


def count_result(spec: list[tuple[str, int, float]], model_version: str | None = "test-1") -> results.CountResult:
    """A CountResult from ``[(exercise, reps, start_s)]``: one repetition every 2 s."""
    sets = []
    for exercise, reps, start in spec:
        method = "peaks" if exercise == "jump_rope" else "classifier"
        repetitions = tuple(results.Repetition(start + 2.0 * i, start + 2.0 * i + 1.5) for i in range(reps))
        sets.append(results.CountedSet(exercise=exercise, method=method, repetitions=repetitions))
    return results.CountResult(sets=tuple(sets), model_version=model_version)


def counted_session(user, spec: list[tuple[str, int, float]], *, at: dt.datetime | None = None, status: str = "done"):
    """A session of ``user`` recorded (and uploaded) at ``at`` (default now) and counted as
    ``spec`` through the real service, so sets get ``performed_at = at + start_s``; then given
    ``status`` (to model a session being re-counted or failed)."""
    from fitness.workouts import services

    session = SensorSessionFactory(user=user)
    if at is not None:
        SensorSession.objects.filter(pk=session.pk).update(created_at=at, started_at=at)
    services.session_save_result(session_id=session.pk, result=count_result(spec))
    if status != SensorSession.Status.DONE:
        SensorSession.objects.filter(pk=session.pk).update(status=status)
    session.refresh_from_db()
    return session
