"""Exemplars (issue 28): a reviewed set tells the learned counter what one repetition is.

Tests fitness/workouts/services/exemplars.py through the API (upload's ``exemplar`` and
``exemplar_set``, ``POST /sessions/{id}/recount/``) and the worker's service
(``session_process``) with a real learned counter file (``learned_counter``).
"""

from __future__ import annotations

import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from fitness.workouts import services, tasks
from fitness.workouts.models import DeletedRow, ExerciseSet, SensorSession
from tests.factories import counted_session, rhythmic_csv

pytestmark = pytest.mark.django_db

SESSIONS = "/api/v1/sessions/"


def upload(api, raw: bytes | None = None, **fields):
    data = {
        "file": SimpleUploadedFile("rec.csv", raw if raw is not None else rhythmic_csv(), content_type="text/csv"),
        "format": "csv",
        **fields,
    }
    return api.post(SESSIONS, data, format="multipart")


def recount(api, session, body) -> object:
    return api.post(f"{SESSIONS}{session.pk}/recount/", body, format="json")


def a_set(user, *, exercise: str = "push_up", reps: int | None = 5, hint: str = "push_up") -> ExerciseSet:
    """A counted set of ``user`` (5 reps over 0-9.5 s) in a done session with ``hint``; reviewed
    with ``reps`` (the same count confirms it), unless ``reps`` is None."""
    session = counted_session(user, [(exercise, 5, 0.0)])
    SensorSession.objects.filter(pk=session.pk).update(exercise_hint=hint)
    exercise_set = session.sets.get()
    if reps is not None:
        exercise_set = services.set_correct(exercise_set=exercise_set, reps=reps)
    return exercise_set


def snapshot(session: SensorSession) -> tuple:
    session.refresh_from_db()
    sets = list(session.sets.order_by("index").values_list("id", "reps", "counted_reps", "exemplar_set"))
    return session.status, session.exemplar, session.exemplar_set_id, sets, DeletedRow.objects.count()


class TestUploadExemplar:
    def test_a_set_of_another_user_is_a_404_naming_the_field_and_nothing_is_stored(
        self, api, user, other_user, stored_files
    ):
        theirs = a_set(other_user)
        files = stored_files()
        resp = upload(api, exercise="push_up", exemplar_set=theirs.pk)
        assert resp.status_code == 404, resp.content
        assert list(resp.json()) == ["exemplar_set"]
        assert not SensorSession.objects.filter(user=user).exists()
        assert stored_files() == files

    def test_a_set_that_does_not_exist_is_a_404(self, api, user):
        resp = upload(api, exercise="push_up", exemplar_set=987654)
        assert resp.status_code == 404
        assert "exemplar_set" in resp.json()
        assert not SensorSession.objects.filter(user=user).exists()

    @pytest.mark.parametrize(
        ("set_kwargs", "fields", "field"),
        [
            ({"exercise": "squat", "hint": "squat"}, {"exercise": "push_up"}, "exemplar_set"),  # other exercise
            ({}, {}, "exemplar_set"),  # no hint is `unknown`: not a push_up
            ({"reps": None}, {"exercise": "push_up"}, "exemplar_set"),  # never confirmed or corrected
            ({"reps": 0}, {"exercise": "push_up"}, "exemplar_set"),  # a phantom set shows no repetition
            ({}, {"exercise": "push_up", "exemplar": "none"}, "exemplar"),  # none and a set contradict
        ],
    )
    def test_an_unusable_set_is_a_400_naming_the_field_and_nothing_is_stored(
        self, api, user, stored_files, set_kwargs, fields, field
    ):
        mine = a_set(user, **set_kwargs)
        sessions, files = SensorSession.objects.count(), stored_files()
        resp = upload(api, exemplar_set=mine.pk, **fields)
        assert resp.status_code == 400, resp.content
        assert field in resp.json(), resp.json()
        assert SensorSession.objects.count() == sessions
        assert stored_files() == files

    def test_an_unknown_exemplar_choice_is_a_400(self, api, user):
        resp = upload(api, exercise="push_up", exemplar="best")
        assert resp.status_code == 400
        assert "exemplar" in resp.json()
        assert not SensorSession.objects.filter(user=user).exists()

    def test_the_choice_is_stored_and_shown(self, api, user):
        mine = a_set(user, reps=4)
        named = upload(api, exercise="push_up", exemplar_set=mine.pk)
        assert named.status_code == 202, named.content
        assert (named.json()["exemplar"], named.json()["exemplar_set"]) == ("set", mine.pk)
        stored = SensorSession.objects.get(pk=named.json()["id"])
        assert (stored.exemplar, stored.exemplar_set_id) == ("set", mine.pk)

        default = upload(api, exercise="push_up").json()
        assert (default["exemplar"], default["exemplar_set"]) == ("auto", None)
        assert upload(api, exercise="push_up", exemplar="none").json()["exemplar"] == "none"
        # Multipart forms send an empty field for "no set".
        assert upload(api, exercise="push_up", exemplar_set="").json()["exemplar"] == "auto"

    def test_sets_show_their_exemplar_set(self, api, user):
        mine = a_set(user)
        body = api.get(f"{SESSIONS}{mine.session_id}/").json()
        assert body["sets"][0]["exemplar_set"] is None
        assert api.get(f"/api/v1/sets/{mine.pk}/").json()["exemplar_set"] is None
        assert api.get(SESSIONS).json()["results"][0]["sets"][0]["exemplar_set"] is None


class TestRecountRefusals:
    @pytest.fixture
    def session(self, user):
        return a_set(user, reps=None).session

    def test_a_set_of_another_user_is_a_404_naming_the_field_and_nothing_changes(self, api, session, other_user):
        before = snapshot(session)
        resp = recount(api, session, {"exemplar_set": a_set(other_user).pk})
        assert resp.status_code == 404
        assert list(resp.json()) == ["exemplar_set"]
        assert snapshot(session) == before

    @pytest.mark.parametrize(
        ("set_kwargs", "body_field"),
        [({"exercise": "squat", "hint": "squat"}, "exemplar_set"), ({"reps": None}, "exemplar_set")],
    )
    def test_another_exercise_or_an_unreviewed_set_is_a_400_and_nothing_changes(
        self, api, user, session, set_kwargs, body_field
    ):
        before = snapshot(session)
        resp = recount(api, session, {"exemplar_set": a_set(user, **set_kwargs).pk})
        assert resp.status_code == 400
        assert body_field in resp.json()
        assert snapshot(session) == before

    def test_the_exemplar_set_is_required(self, api, session):
        resp = recount(api, session, {})
        assert resp.status_code == 400
        assert "exemplar_set" in resp.json()

    @pytest.mark.parametrize("status", ["queued", "processing", "failed"])
    def test_a_session_that_is_not_done_is_a_409(self, api, user, session, status):
        exemplar = a_set(user)
        SensorSession.objects.filter(pk=session.pk).update(status=status)
        before = snapshot(session)
        resp = recount(api, session, {"exemplar_set": exemplar.pk})
        assert resp.status_code == 409
        assert resp.json()["status"] == status
        assert snapshot(session) == before

    def test_another_users_session_is_a_404(self, other_api, other_user, session):
        before = snapshot(session)
        assert recount(other_api, session, {"exemplar_set": a_set(other_user).pk}).status_code == 404
        assert snapshot(session) == before

    def test_it_is_rate_limited_as_uploads(self, api, user, session, settings):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "upload": "1/hour"},
        }
        exemplar = a_set(user)
        assert recount(api, session, {"exemplar_set": exemplar.pk}).status_code == 202
        limited = recount(api, session, {"exemplar_set": exemplar.pk})
        assert limited.status_code == 429
        assert "Retry-After" in limited


# --- Counting with a real learned counter ----------------------------------------------


def count_upload(api, **fields) -> dict:
    """Upload a steady 40 s push-up recording and count it as the worker does; the session's body."""
    resp = upload(api, exercise="push_up", **fields)
    assert resp.status_code == 202, resp.content
    services.session_process(session_id=resp.json()["id"])
    return api.get(f"{SESSIONS}{resp.json()['id']}/").json()


def correct(api, body: dict, reps: int) -> int:
    """The user corrects the session's only set to ``reps``; returns the set's id."""
    (counted,) = body["sets"]
    assert api.patch(f"/api/v1/sets/{counted['id']}/", {"reps": reps}, format="json").status_code == 200
    return counted["id"]


class TestCountingWithAnExemplar:
    def test_auto_takes_the_newest_reviewed_set_and_the_count_follows_it(self, api, learned_counter):
        first = count_upload(api)
        assert first["status"] == "done", first["error"]
        (plain,) = first["sets"]
        assert plain["method"] == "learned"
        assert plain["exemplar_set"] is None  # nothing reviewed yet
        version = first["model_version"]
        assert version

        # The user says the 40 s hold 10 repetitions, far fewer than the counter said.
        user_says = max(3, plain["reps"] // 3)
        assert user_says < plain["reps"] - 2
        exemplar_id = correct(api, first, user_says)

        second = count_upload(api)  # exemplar: auto
        assert second["status"] == "done", second["error"]
        assert second["model_version"] == version
        assert second["sets"], second
        assert all(s["method"] == "learned" and s["exemplar_set"] == exemplar_id for s in second["sets"])
        assert abs(second["total_reps"] - user_says) <= 1, (second["total_reps"], user_says)

        # More repetitions than the counter said: the count goes up instead.
        more = plain["reps"] * 2
        third = count_upload(api)
        correct(api, third, more)
        fourth = count_upload(api)
        assert fourth["total_reps"] > plain["reps"] + 2
        assert abs(fourth["total_reps"] - more) <= 2

        # none: counted as before, naming no exemplar.
        fifth = count_upload(api, exemplar="none")
        assert fifth["total_reps"] == plain["reps"]
        assert [s["exemplar_set"] for s in fifth["sets"]] == [None]

    def test_no_auto_exemplar_without_an_exercise(self, api, user, learned_counter):
        reviewed = a_set(user, exercise="unknown", hint="", reps=3)
        resp = upload(api)
        session = services.session_process(session_id=resp.json()["id"])
        assert session.status == "done"
        assert not session.sets.filter(exemplar_set=reviewed).exists()

    def test_an_exemplar_whose_recording_is_gone_never_fails_the_session(self, api, learned_counter, caplog):
        first = count_upload(api)
        exemplar_id = correct(api, first, 5)
        source = SensorSession.objects.get(pk=first["id"])
        source.file.storage.delete(source.file.name)

        with caplog.at_level(logging.WARNING, logger="fitness.workouts.services.exemplars"):
            second = count_upload(api, exemplar_set=exemplar_id)
        assert second["status"] == "done", second["error"]
        assert second["total_reps"] == first["sets"][0]["counted_reps"]  # counted without it
        assert [s["exemplar_set"] for s in second["sets"]] == [None]
        assert f"set {exemplar_id} cannot serve as the exemplar" in caplog.text

    def test_an_exemplar_set_deleted_before_the_count_is_left_out(self, api, user, learned_counter):
        mine = a_set(user, reps=3)
        resp = upload(api, exercise="push_up", exemplar_set=mine.pk)
        services.session_delete(session=mine.session)
        session = services.session_process(session_id=resp.json()["id"])
        assert session.status == "done"
        assert (session.exemplar, session.exemplar_set_id) == ("set", None)
        assert not session.sets.exclude(exemplar_set=None).exists()

    def test_recount_replaces_the_unreviewed_sets_with_the_exemplars_count(
        self, api, learned_counter, monkeypatch, django_capture_on_commit_callbacks
    ):
        target = count_upload(api, exemplar="none")
        (old,) = target["sets"]
        source = count_upload(api, exemplar="none")
        user_says = max(3, old["reps"] // 3)
        exemplar_id = correct(api, source, user_says)
        old_reps = set(SensorSession.objects.get(pk=target["id"]).sets.get().repetitions.values_list("id", flat=True))

        queued = []
        monkeypatch.setattr(tasks.process_session, "delay", queued.append)
        with django_capture_on_commit_callbacks(execute=True):
            resp = api.post(f"{SESSIONS}{target['id']}/recount/", {"exemplar_set": exemplar_id}, format="json")
        assert resp.status_code == 202, resp.content
        assert (resp.json()["status"], resp.json()["exemplar"], resp.json()["exemplar_set"]) == (
            "queued",
            "set",
            exemplar_id,
        )
        assert queued == [target["id"]]  # on the counting queue, as an upload
        # While it is counted again its sets are out of the history, as for reprocessing.
        assert old["id"] not in {s["id"] for s in api.get("/api/v1/sets/").json()["results"]}

        assert tasks.process_session(target["id"]) == "done"  # the task the worker runs
        body = api.get(f"{SESSIONS}{target['id']}/").json()
        assert old["id"] not in {s["id"] for s in body["sets"]}
        assert all(s["exemplar_set"] == exemplar_id and s["method"] == "learned" for s in body["sets"])
        assert abs(body["total_reps"] - user_says) <= 1
        # Sync clients learn that the old set and its repetitions went (tombstones), as after reprocessing.
        assert DeletedRow.objects.filter(kind="set", row_id=old["id"]).exists()
        assert set(DeletedRow.objects.filter(kind="repetition").values_list("row_id", flat=True)) >= old_reps
        # History and statistics read the new count.
        history = {s["id"]: s for s in api.get("/api/v1/sets/").json()["results"]}
        assert {s["id"] for s in body["sets"]} <= set(history)
        stats = {row["exercise"]: row["total_reps"] for row in api.get("/api/v1/stats/exercises/").json()}
        assert stats["push_up"] == body["total_reps"] + user_says

    def test_recount_keeps_reviewed_sets_and_may_use_one_of_its_own(self, api, learned_counter):
        target = count_upload(api, exemplar="none")
        (counted,) = target["sets"]
        user_says = max(3, counted["reps"] // 3)
        own = correct(api, target, user_says)
        session = SensorSession.objects.get(pk=target["id"])
        assert recount(api, session, {"exemplar_set": own}).status_code == 202
        assert services.session_process(session_id=session.pk).status == "done"

        body = api.get(f"{SESSIONS}{target['id']}/").json()
        # The reviewed set stays with the user's count and absorbs the overlapping new set,
        # whose count (with itself as the exemplar) is now its counted_reps; it names no exemplar.
        assert [(s["id"], s["reps"], s["reviewed_at"] is not None) for s in body["sets"]] == [(own, user_says, True)]
        assert abs(body["sets"][0]["counted_reps"] - user_says) <= 1
        assert body["sets"][0]["exemplar_set"] is None
        assert body["total_reps"] == user_says


def test_the_exemplar_for_a_session_is_the_newest_reviewed_set_with_its_recording(user, learned_counter):
    from fitness.workouts.services.processing import active_counter
    from inference.io import read_recording

    older = a_set(user, reps=4)
    newer = a_set(user, reps=3)
    ExerciseSet.objects.filter(pk=older.pk).update(performed_at=timezone.now() - timezone.timedelta(days=2))
    ExerciseSet.objects.filter(pk=newer.pk).update(performed_at=timezone.now() - timezone.timedelta(days=1))
    a_set(user, reps=None)  # newest, not reviewed
    a_set(user, exercise="squat", hint="squat", reps=5)  # newest, another exercise
    session = SensorSession.objects.get(pk=a_set(user, reps=None).session_id)
    with session.file.open("rb") as fh:
        recording = read_recording(fh, "csv")

    chosen, exemplar = services.exemplar_for(session=session, recording=recording, counter=active_counter())
    assert chosen == newer
    assert exemplar.reps == 3

    newer.session.file.storage.delete(newer.session.file.name)  # its recording is gone: the next one
    chosen, exemplar = services.exemplar_for(session=session, recording=recording, counter=active_counter())
    assert chosen == older
    assert exemplar.reps == 4

    SensorSession.objects.filter(pk=session.pk).update(exemplar="none")
    session.refresh_from_db()
    assert services.exemplar_for(session=session, recording=recording, counter=active_counter()) == (None, None)
    assert services.exemplar_for(session=session, recording=recording, counter=None) == (None, None)


def test_the_schema_describes_exemplars():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    upload_body = schema["paths"]["/api/v1/sessions/"]["post"]["requestBody"]["content"]["multipart/form-data"]
    upload_fields = components[upload_body["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]
    assert {"exemplar", "exemplar_set"} <= set(upload_fields)
    assert "404" in schema["paths"]["/api/v1/sessions/"]["post"]["responses"]
    for name in ("Session", "SessionList", "ExerciseSet", "ExerciseSetSummary", "SetHistory"):
        assert "exemplar_set" in components[name]["properties"], name
    assert "learned" in components["SetMethodEnum"]["enum"]
    operation = schema["paths"]["/api/v1/sessions/{id}/recount/"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RecountRequest"
    }
    assert components["RecountRequest"]["required"] == ["exemplar_set"]
    assert set(operation["responses"]) >= {"202", "400", "404", "409", "429"}
    assert operation["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Session"
    }
    assert operation["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
