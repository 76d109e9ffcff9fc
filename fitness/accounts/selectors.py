"""Reads for accounts: whether a username is taken, the full export of one user's data."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone

from .signals import account_export

if TYPE_CHECKING:
    from .models import User

EXPORT_FORMAT = "fitness-export/1"

_SESSION_FIELDS = (
    "id",
    "client_id",
    "workout_id",
    "status",
    "error",
    "format",
    "exercise_hint",
    "model_version",
    "total_reps",
    "n_samples",
    "duration_s",
    "sample_rate_hz",
    "channels",
    "created_at",
    "started_at",
    "processing_started_at",
    "finished_at",
)
#: A set with the user's corrections: ``reps`` (the user's count), ``counted_reps`` (the counter's),
#: ``origin`` and ``reviewed_at``.
_SET_FIELDS = (
    "id",
    "session_id",
    "index",
    "exercise",
    "method",
    "reps",
    "counted_reps",
    "origin",
    "reviewed_at",
    "start_s",
    "end_s",
    "performed_at",
)


def username_taken(*, username: str) -> bool:
    """Whether an account has this name in any case (folded by the database, as its constraint)."""
    return get_user_model().objects.alias(folded=Lower("username")).filter(folded=Lower(Value(username))).exists()


def user_export(*, user: User, recording_url: Callable[[str], str]) -> dict:
    """Everything stored about ``user`` as JSON-ready data (datetimes left to the encoder).

    ``recording_url(session_id)`` gives the link to each raw recording (the files
    themselves are not inlined). Sessions are newest first with their sets and
    repetitions nested, each set with the user's corrections; five queries whatever the
    history's size, plus those of the apps that add sections through
    :data:`~.signals.account_export` (webhooks: ``webhooks``, one query).

    Raises:
        ValueError: a receiver of ``account_export`` answered a section name already taken.
    """
    from fitness.workouts.models import ExerciseSet, Repetition, SensorSession, Workout

    reps_by_set: dict[int, list[dict]] = defaultdict(list)
    for rep in (
        Repetition.objects.filter(set__user=user)
        .order_by("set_id", "index")
        .values("set_id", "index", "start_s", "end_s")
        .iterator(chunk_size=5000)
    ):
        reps_by_set[rep.pop("set_id")].append(rep)
    sets_by_session: dict[str, list[dict]] = defaultdict(list)
    for row in ExerciseSet.objects.filter(user=user).order_by("session_id", "index").values(*_SET_FIELDS):
        session_id = str(row.pop("session_id"))
        row["repetitions"] = reps_by_set.pop(row["id"], [])
        sets_by_session[session_id].append(row)

    sessions = []
    for row in SensorSession.objects.filter(user=user).order_by("-created_at").values(*_SESSION_FIELDS):
        session_id = str(row["id"])
        row["workout"] = row.pop("workout_id")
        row["recording_url"] = recording_url(session_id)
        row["sets"] = sets_by_session.pop(session_id, [])
        sessions.append(row)
    workouts = Workout.objects.filter(user=user).order_by("date", "id").values("id", "date", "notes", "created_at")
    body = {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now(),
        "user": {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "date_joined": user.date_joined,
            "time_zone": user.time_zone,
        },
        "workouts": list(workouts),
        "sessions": sessions,
    }
    for receiver, sections in account_export.send(sender=type(user), user=user):
        for name, data in sections.items():
            if name in body:
                raise ValueError(f"account export section {name!r} of {receiver!r} is already taken")
            body[name] = data
    return body
