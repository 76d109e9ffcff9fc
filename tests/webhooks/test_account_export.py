"""The account export (``GET /api/v1/account/export/``) holds the user's webhooks, never their
secrets (the webhooks app adds them through accounts' ``account_export`` signal)."""

from __future__ import annotations

import json

import pytest

from fitness.accounts import selectors as account_selectors
from fitness.accounts.signals import account_export
from tests.webhooks.conftest import subscribe

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/account/export/"


def test_export_lists_the_users_webhooks_without_secrets(api, user, other_user, receiver):
    older = subscribe(user, "https://hooks.example/old", events=["session.failed"])
    created = api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["session.done"]}, format="json")
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    theirs = subscribe(other_user, "https://hooks.example/theirs")

    resp = api.get(EXPORT)
    assert resp.status_code == 200
    body = json.loads(resp.content)
    assert [w["id"] for w in body["webhooks"]] == [created.json()["id"], str(older.pk)]  # newest first
    newest = body["webhooks"][0]
    assert newest == {
        "id": created.json()["id"],
        "url": receiver.url,
        "events": ["session.done"],
        "created_at": created.json()["created_at"],
    }
    assert body["webhooks"][1]["events"] == ["session.failed"]
    text = resp.content.decode()
    assert secret not in text
    assert older.secret not in text
    assert str(theirs.pk) not in text
    assert theirs.url not in text


def test_export_of_an_account_without_webhooks(api):
    assert api.get(EXPORT).json()["webhooks"] == []


def test_a_section_name_already_taken_is_refused(user):
    def clash(sender, user, **kwargs):
        return {"sessions": []}

    account_export.connect(clash, dispatch_uid="test.clash")
    try:
        with pytest.raises(ValueError, match="'sessions'"):
            account_selectors.user_export(user=user, recording_url=str)
    finally:
        account_export.disconnect(dispatch_uid="test.clash")
