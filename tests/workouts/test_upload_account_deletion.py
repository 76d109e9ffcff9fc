"""An upload in flight while its account is deleted (issue 29, item 9): a 4xx or a session
deleted with the account, never an IntegrityError, and nothing left behind.

Run on SQLite and on PostgreSQL (DATABASE_URL): both interleavings use real transactions.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from fitness.accounts import services as account_services
from fitness.accounts.models import User
from fitness.workouts import tasks
from fitness.workouts.models import SensorSession
from fitness.workouts.services import uploads
from tests.conftest import bearer_client
from tests.factories import UserFactory, canonical_csv

SESSIONS = "/api/v1/sessions/"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(monkeypatch) -> list[str]:
    sent: list[str] = []
    monkeypatch.setattr(tasks.process_session, "delay", sent.append)
    return sent


def upload(client):
    data = SimpleUploadedFile("rec.csv", canonical_csv(), content_type="text/csv")
    return client.post(SESSIONS, {"file": data, "format": "csv"}, format="multipart")


def test_an_account_deleted_before_the_insert_is_a_401_and_nothing_is_stored(monkeypatch, queued, stored_files):
    user = UserFactory()
    client = bearer_client(user)
    check = uploads.check_countable

    def deleted_meanwhile(**kwargs):  # after authentication and parsing, before the insert
        account_services.user_delete(user=User.objects.get(pk=user.pk))
        return check(**kwargs)

    monkeypatch.setattr(uploads, "check_countable", deleted_meanwhile)
    resp = upload(client)
    assert resp.status_code == 401, resp.content
    assert "deleted" in resp.json()["detail"]
    assert not User.objects.filter(pk=user.pk).exists()
    assert not SensorSession.objects.exists()
    assert stored_files() == []
    assert queued == []


def test_an_account_deleted_while_the_session_is_inserted_takes_it_along(monkeypatch, queued, stored_files):
    """The deletion starts while the upload's transaction holds the user's row: it waits for
    the upload to commit, then deletes the new session and its file with the account."""
    user = UserFactory()
    client = bearer_client(user)
    inserting, errors = threading.Event(), []
    content = uploads.ContentFile

    def slow_content(raw):  # inside the upload's transaction, after the user's row is locked
        inserting.set()
        time.sleep(1.0)
        return content(raw)

    def delete_account() -> None:
        try:
            inserting.wait(timeout=30)
            account_services.user_delete(user=User.objects.get(pk=user.pk))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    monkeypatch.setattr(uploads, "ContentFile", slow_content)
    deleter = threading.Thread(target=delete_account)
    deleter.start()
    resp = upload(client)
    deleter.join(timeout=60)
    assert resp.status_code in (202, 401), resp.content
    assert errors == []
    assert not User.objects.filter(pk=user.pk).exists()
    assert not SensorSession.objects.exists()
    assert stored_files() == []
