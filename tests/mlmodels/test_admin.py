"""The registry in the Django admin: upload with validation, activation, stages, read-only logs."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fitness.mlmodels.models import ModelStageChange, ModelVersion, Stage
from fitness.workouts.models import EvaluationSession, ShadowResult
from tests.factories import SensorSessionFactory

pytestmark = pytest.mark.django_db

ADMIN = "/admin/mlmodels/modelversion/"


@pytest.mark.parametrize(
    "url",
    [
        ADMIN,
        f"{ADMIN}add/",
        "/admin/mlmodels/modelstagechange/",
        "/admin/workouts/shadowresult/",
        "/admin/workouts/evaluationsession/",
        "/admin/workouts/evaluationsession/add/",
    ],
)
def test_pages_render(admin_client, register, model_files, url):
    version = register(model_files["a"], stage="production")
    ShadowResult.objects.create(session=SensorSessionFactory(status="done"), model_version=version, agrees=True)
    assert admin_client.get(url).status_code == 200


def test_change_page_shows_history_and_shadow_agreement(admin_client, register, model_files):
    version = register(model_files["b"], stage="staging")
    for agrees in (True, True, False):
        ShadowResult.objects.create(session=SensorSessionFactory(status="done"), model_version=version, agrees=agrees)
    page = admin_client.get(f"{ADMIN}{version.pk}/change/").content.decode()
    assert "66.7% of 3 sessions (0 errors)" in page
    assert "staging" in page


def test_upload_prechecks_before_storing_and_shows_the_validation(admin_client, admin_user, model_files, stored_files):
    data = model_files["a"].data
    resp = admin_client.post(f"{ADMIN}add/", {"upload": SimpleUploadedFile("m.keras", data[:1000]), "notes": ""})
    assert resp.status_code == 200  # the form again, with the reason
    assert "not a model file" in resp.content.decode()
    assert not ModelVersion.objects.exists()
    assert stored_files() == []

    resp = admin_client.post(f"{ADMIN}add/", {"upload": SimpleUploadedFile("m.keras", data), "notes": "via admin"})
    assert resp.status_code == 302
    version = ModelVersion.objects.get()
    assert (version.version, version.notes, version.uploaded_by, version.stage) == (
        "tiny-a",
        "via admin",
        admin_user,
        Stage.NONE,
    )
    assert len(stored_files()) == 1  # the .keras; its full check and export are queued after the commit
    assert (version.validation_status, version.runtime_status) == ("pending", "pending")
    page = admin_client.get(ADMIN).content.decode()
    assert "pending" in page
    ModelVersion.objects.filter(pk=version.pk).update(validation_status="invalid", validation_error="it crashed")
    assert "invalid: it crashed" in admin_client.get(ADMIN).content.decode()
    assert "it crashed" in admin_client.get(f"{ADMIN}{version.pk}/change/").content.decode()

    resp = admin_client.post(f"{ADMIN}add/", {"upload": SimpleUploadedFile("m.keras", data), "notes": ""})
    assert "already registered" in resp.content.decode()
    assert ModelVersion.objects.count() == 1


def test_activate_action_and_rollback(admin_client, admin_user, register, model_files):
    a = register(model_files["a"], stage="production")
    b = register(model_files["b"])
    resp = admin_client.post(ADMIN, {"action": "activate", "_selected_action": [b.pk]})
    assert resp.status_code == 302
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.stage, b.stage, b.activated_by) == (Stage.ARCHIVED, Stage.PRODUCTION, admin_user)
    admin_client.post(ADMIN, {"action": "activate", "_selected_action": [a.pk]})
    a.refresh_from_db()
    assert a.stage == Stage.PRODUCTION
    assert ModelStageChange.objects.filter(changed_by=admin_user).count() == 4
    # Two at once is refused.
    admin_client.post(ADMIN, {"action": "activate", "_selected_action": [a.pk, b.pk]})
    assert ModelVersion.objects.get(stage=Stage.PRODUCTION) == a


def test_stage_actions(admin_client, register, model_files):
    a = register(model_files["a"], stage="production")
    b = register(model_files["b"])
    admin_client.post(ADMIN, {"action": "make_staging", "_selected_action": [a.pk, b.pk]})
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.stage, b.stage) == (Stage.PRODUCTION, Stage.STAGING)
    admin_client.post(ADMIN, {"action": "unstage", "_selected_action": [b.pk]})
    b.refresh_from_db()
    assert b.stage == Stage.NONE


def test_versions_and_the_log_cannot_be_deleted_or_edited(admin_client, register, model_files):
    version = register(model_files["a"], stage="production")
    change = ModelStageChange.objects.get()
    assert admin_client.post(f"{ADMIN}{version.pk}/delete/", {"post": "yes"}).status_code == 403
    assert (
        admin_client.post(f"/admin/mlmodels/modelstagechange/{change.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert ModelVersion.objects.filter(pk=version.pk).exists()


def test_evaluation_sessions_must_be_labelled(admin_client, user):
    session = SensorSessionFactory(user=user)
    resp = admin_client.post("/admin/workouts/evaluationsession/add/", {"session": str(session.pk)})
    assert resp.status_code == 200
    assert "labelled exermote" in resp.content.decode()
    assert not EvaluationSession.objects.exists()


def test_evaluate_action_queues_evaluations(
    admin_client, register, model_files, monkeypatch, django_capture_on_commit_callbacks
):
    from fitness.mlmodels import tasks

    sent = []
    monkeypatch.setattr(tasks.evaluate_model_version, "delay", lambda *args: sent.append(args))
    a = register(model_files["a"])
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(ADMIN, {"action": "evaluate", "_selected_action": [a.pk]})
    a.refresh_from_db()
    assert a.evaluation_status == "queued"
    assert [args[0] for args in sent] == [a.pk]


def test_export_action_queues_exports_again(
    admin_client, register, model_files, monkeypatch, django_capture_on_commit_callbacks
):
    from fitness.mlmodels import tasks

    sent = []
    monkeypatch.setattr(tasks.export_model_version, "delay", lambda *args: sent.append(args))
    a = register(model_files["a"])
    ModelVersion.objects.filter(pk=a.pk).update(runtime_export={"error": "the converter failed"})
    page = admin_client.get(f"{ADMIN}{a.pk}/change/").content.decode()
    assert "failed: the converter failed" in page
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(ADMIN, {"action": "export", "_selected_action": [a.pk]})
    a.refresh_from_db()
    assert (a.runtime_status, a.runtime_export) == ("pending", {})
    assert sent == [(a.pk,)]
