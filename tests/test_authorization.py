"""Authorization of every endpoint: as owner, as another user, anonymously, as non-staff.

The table below must name every operation of the OpenAPI schema, so a new endpoint
cannot be added without saying who may use it. Other users' objects are 404 for every
method (writes included) and unchanged; anonymous requests are 401 with a Bearer
challenge; the model registry and reprocessing are staff-only (403).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework_simplejwt.tokens import RefreshToken

from fitness.webhooks import tasks as webhook_tasks
from fitness.webhooks.models import Delivery, Subscription
from fitness.workouts import tasks
from fitness.workouts.models import ExerciseSet, Repetition, SensorSession, Workout
from tests.conftest import bearer_client
from tests.factories import PASSWORD, UserFactory, WorkoutFactory, canonical_csv, counted_session

pytestmark = pytest.mark.django_db

PUBLIC, OWNED, MINE, STAFF = "public", "owned", "mine", "staff"
#: Any signed-in user, the same answer for all (no user data: the exercise catalog).
ANY = "any"
#: The owner's workout notes: must never appear in another user's answers.
SECRET = "owner-notes-7f3a"


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # as in the schema, with {id}
    access: str  # PUBLIC (no login), OWNED (an object of one user), MINE (the caller's own data), ANY, STAFF
    ok: int = 200  # the owner's (or staff's) answer


OPS = [
    Op("post", "/api/v1/auth/register/", PUBLIC, 201),
    Op("post", "/api/v1/auth/token/", PUBLIC),
    Op("post", "/api/v1/auth/token/refresh/", PUBLIC),
    Op("post", "/api/v1/auth/logout/", PUBLIC, 204),  # holding the refresh token is the proof
    Op("get", "/api/v1/account/", MINE),
    Op("patch", "/api/v1/account/", MINE),
    Op("delete", "/api/v1/account/", MINE, 204),
    Op("get", "/api/v1/account/export/", MINE),
    Op("post", "/api/v1/account/password/", MINE, 204),
    Op("get", "/api/v1/workouts/", MINE),
    Op("post", "/api/v1/workouts/", MINE, 201),
    Op("get", "/api/v1/workouts/{id}/", OWNED),
    Op("put", "/api/v1/workouts/{id}/", OWNED),
    Op("patch", "/api/v1/workouts/{id}/", OWNED),
    Op("delete", "/api/v1/workouts/{id}/", OWNED, 204),
    Op("get", "/api/v1/sessions/", MINE),
    Op("post", "/api/v1/sessions/", MINE, 202),
    Op("get", "/api/v1/sessions/{id}/", OWNED),
    Op("delete", "/api/v1/sessions/{id}/", OWNED, 204),
    Op("get", "/api/v1/sessions/{id}/plot.png", OWNED),
    Op("get", "/api/v1/sessions/{id}/recording/", OWNED),
    Op("get", "/api/v1/sessions/{id}/export/", OWNED),
    Op("post", "/api/v1/sessions/{id}/sets/", OWNED, 201),
    Op("post", "/api/v1/sessions/{id}/recount/", OWNED, 202),
    Op("post", "/api/v1/sessions/reprocess/", STAFF, 202),
    Op("get", "/api/v1/sets/", MINE),
    Op("get", "/api/v1/sets/changes/", MINE),
    Op("get", "/api/v1/sets/{id}/", OWNED),
    Op("patch", "/api/v1/sets/{id}/", OWNED),
    Op("get", "/api/v1/repetitions/", MINE),
    Op("get", "/api/v1/repetitions/changes/", MINE),
    Op("get", "/api/v1/repetitions/{id}/", OWNED),
    Op("get", "/api/v1/exercises/", ANY),
    Op("get", "/api/v1/stats/exercises/", MINE),
    Op("get", "/api/v1/stats/timeseries/", MINE),
    Op("get", "/api/v1/stats/records/", MINE),
    Op("get", "/api/v1/stats/streaks/", MINE),
    Op("get", "/api/v1/model-versions/", STAFF),
    Op("post", "/api/v1/model-versions/", STAFF, 400),  # no file: validated before any model is loaded
    Op("get", "/api/v1/model-versions/{id}/", STAFF, 404),
    Op("post", "/api/v1/model-versions/{id}/activate/", STAFF, 404),
    Op("post", "/api/v1/model-versions/{id}/evaluate/", STAFF, 404),
    Op("post", "/api/v1/model-versions/{id}/stage/", STAFF, 404),
    Op("get", "/api/v1/webhooks/", MINE),
    Op("post", "/api/v1/webhooks/", MINE, 201),
    Op("get", "/api/v1/webhooks/{id}/", OWNED),
    Op("delete", "/api/v1/webhooks/{id}/", OWNED, 204),
    Op("get", "/api/v1/webhooks/{id}/deliveries/", OWNED),
    Op("post", "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver/", OWNED, 202),
]
IDS = [f"{op.method.upper()} {op.path}" for op in OPS]


def ops(predicate) -> list:
    """The operations for which ``predicate(op)`` holds, as pytest parameters named by method and path."""
    return [pytest.param(op, id=name) for op, name in zip(OPS, IDS, strict=True) if predicate(op)]


def test_every_operation_of_the_schema_is_in_the_table():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    in_schema = {
        (method, path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert in_schema == {(op.method, op.path) for op in OPS}


@pytest.fixture
def world(user, other_user, monkeypatch):
    """The owner's workout, counted session (with its set and repetition) and a staff user."""
    monkeypatch.setattr(tasks.process_session, "delay", lambda session_id: None)
    monkeypatch.setattr(webhook_tasks.deliver, "delay", lambda delivery_id: None)
    session = counted_session(user, [("squat", 3, 1.0)])
    exercise_set = ExerciseSet.objects.get(session=session)
    webhook = Subscription.objects.create(user=user, url="https://8.8.4.4/hook", events=["session.done"])
    return {
        "webhook": webhook,
        "delivery": Delivery.objects.create(
            subscription=webhook,
            event="session.done",
            session_id=session.pk,
            payload=webhook_event(session),
            status=Delivery.Status.FAILED,  # a redelivery by another user would show
        ),
        "workout": WorkoutFactory(user=user, notes=SECRET),
        "session": session,
        "set": exercise_set,
        "repetition": Repetition.objects.filter(set=exercise_set).first(),
        "staff": UserFactory(is_staff=True),
        "owner": user,
        "exemplar": reviewed_set(user),
    }


def reviewed_set(user) -> ExerciseSet:
    """A set of ``user`` confirmed as counted: an exemplar for the session (no hint: ``unknown``)."""
    exercise_set = ExerciseSet.objects.get(session=counted_session(user, [("unknown", 3, 1.0)]))
    ExerciseSet.objects.filter(pk=exercise_set.pk).update(reviewed_at=timezone.now())
    return exercise_set


def webhook_event(session) -> dict:
    return {
        "event": "session.done",
        "session_id": str(session.pk),
        "status": "done",
        "total_reps": 3,
        "occurred_at": "2024-05-01T10:00:00Z",
        "delivery_id": "00000000-0000-4000-8000-000000000001",
    }


def url_of(op: Op, world) -> str:
    if "{id}" not in op.path:
        return op.path
    kind = op.path.split("/")[3]
    obj = {
        "workouts": world["workout"],
        "sessions": world["session"],
        "sets": world["set"],
        "repetitions": world["repetition"],
        "webhooks": world["webhook"],
    }.get(kind)
    path = op.path.replace("{delivery_id}", str(world["delivery"].pk))
    if op.path.endswith("/export/"):
        path += "?format=health-connect"
    return path.replace("{id}", str(obj.pk if obj is not None else 999_999))


def payload(op: Op, world) -> tuple[dict | None, str]:
    """A valid body for the owner's request, and its format."""
    if op.method in {"get", "delete"}:
        return None, "json"
    if op.path == "/api/v1/sessions/":
        upload = SimpleUploadedFile("rec.csv", canonical_csv(), content_type="text/csv")
        return {"file": upload, "format": "csv"}, "multipart"
    if op.path == "/api/v1/model-versions/":
        return {}, "multipart"  # the upload takes multipart only; without a file: 400
    bodies = {
        ("post", "/api/v1/workouts/"): {"date": "2024-05-02", "notes": "new"},
        ("put", "/api/v1/workouts/{id}/"): {"date": "2024-05-03", "notes": "changed"},
        ("patch", "/api/v1/workouts/{id}/"): {"notes": "changed"},
        ("patch", "/api/v1/account/"): {"time_zone": "Europe/Berlin"},
        ("post", "/api/v1/sessions/reprocess/"): {"sessions": [str(world["session"].pk)]},
        ("patch", "/api/v1/sets/{id}/"): {"reps": 4},
        ("post", "/api/v1/sessions/{id}/sets/"): {"exercise": "sit_up", "reps": 2, "start_s": 7.0, "end_s": 9.0},
        ("post", "/api/v1/sessions/{id}/recount/"): {"exemplar_set": world["exemplar"].pk},
        ("post", "/api/v1/auth/register/"): {"username": "newcomer", "password": PASSWORD},
        ("post", "/api/v1/auth/token/"): {"username": world["owner"].username, "password": PASSWORD},
        ("post", "/api/v1/auth/token/refresh/"): {"refresh": str(RefreshToken.for_user(world["owner"]))},
        ("post", "/api/v1/auth/logout/"): {"refresh": str(RefreshToken.for_user(world["owner"]))},
        ("post", "/api/v1/account/password/"): {"old_password": PASSWORD, "new_password": "another-horse-battery-10"},
        # A literal public address: no name to resolve (nothing is sent: the task is not published).
        ("post", "/api/v1/webhooks/"): {"url": "https://8.8.8.8/hook", "events": ["session.failed"]},
    }
    return bodies.get((op.method, op.path), {}), "json"


def call(client, op: Op, world):
    data, fmt = payload(op, world)
    return getattr(client, op.method)(url_of(op, world), data, format=fmt)


def snapshot(world) -> tuple:
    """What another user's request must leave as it was."""
    workout = Workout.objects.filter(pk=world["workout"].pk).values_list("notes", "date").first()
    session = SensorSession.objects.filter(pk=world["session"].pk).values_list("status", "total_reps").first()
    sets = list(ExerciseSet.objects.order_by("pk").values_list("pk", "reps", "reviewed_at"))
    webhook = Subscription.objects.filter(pk=world["webhook"].pk).values_list("url", "events").first()
    delivery = Delivery.objects.filter(pk=world["delivery"].pk).values_list("status", flat=True).first()
    return workout, session, sets, Repetition.objects.count(), webhook, delivery


@pytest.mark.parametrize("op", ops(lambda op: op.access != PUBLIC))
def test_anonymous_is_401_with_a_bearer_challenge(anon_client, world, op):
    before = snapshot(world)
    resp = call(anon_client, op, world)
    assert resp.status_code == 401, resp.content[:300]
    assert resp["WWW-Authenticate"].startswith("Bearer")
    assert snapshot(world) == before


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_owner_or_staff_is_served(user, world, op):
    client = bearer_client(world["staff"] if op.access == STAFF else user)
    resp = call(client, op, world)
    assert resp.status_code == op.ok, resp.content[:300]


@pytest.mark.parametrize("op", ops(lambda op: op.access == OWNED))
def test_another_users_object_is_404_for_reads_and_writes(other_api, world, op):
    before = snapshot(world)
    resp = call(other_api, op, world)
    assert resp.status_code == 404, resp.content[:300]
    assert snapshot(world) == before


@pytest.mark.parametrize("op", ops(lambda op: op.access == MINE and op.method == "get"))
def test_another_user_sees_none_of_the_owners_data(other_api, other_user, world, op):
    resp = call(other_api, op, world)
    assert resp.status_code == 200
    text = resp.content.decode()
    assert str(world["session"].pk) not in text
    assert SECRET not in text
    assert "squat" not in text


@pytest.mark.parametrize("op", ops(lambda op: op.access == STAFF))
def test_model_management_is_staff_only(api, world, op):
    before = snapshot(world)
    resp = call(api, op, world)
    assert resp.status_code == 403, resp.content[:300]
    assert snapshot(world) == before


def test_other_users_cannot_attach_their_upload_to_the_owners_workout(other_api, world):
    data, fmt = payload(Op("post", "/api/v1/sessions/", MINE), world)
    resp = other_api.post("/api/v1/sessions/", {**data, "workout": world["workout"].pk}, format=fmt)
    assert resp.status_code == 400
    assert "does not exist" in resp.json()["workout"][0]
    assert not SensorSession.objects.filter(workout=world["workout"]).exists()
