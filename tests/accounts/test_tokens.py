"""Revoking tokens: refresh tokens rotate (a used one is blacklisted), logout blacklists the
given refresh token, and a password change ends every earlier access and refresh token of
the account. Real requests, real database (simplejwt's token_blacklist tables)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.accounts.concurrency import race
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"
PASSWORD_CHANGE = "/api/v1/account/password/"
ACCOUNT = "/api/v1/account/"
NEW_PASSWORD = "another-horse-battery-10"


def login(username: str, password: str = PASSWORD) -> dict:
    resp = APIClient().post(TOKEN, {"username": username, "password": password})
    assert resp.status_code == 200, resp.content[:300]
    return resp.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def refresh(token: str):
    return APIClient().post(REFRESH, {"refresh": token})


class TestRotation:
    def test_a_refresh_token_works_once_and_gives_a_new_one(self):
        user = UserFactory()
        first = login(user.username)["refresh"]
        renewed = refresh(first)
        assert renewed.status_code == 200
        assert set(renewed.json()) == {"access", "refresh"}
        assert renewed.json()["refresh"] != first
        assert bearer(renewed.json()["access"]).get(ACCOUNT).status_code == 200

        again = refresh(first)
        assert again.status_code == 401
        assert again.json()["code"] == "token_not_valid"
        # The new one works, once too.
        assert refresh(renewed.json()["refresh"]).status_code == 200
        assert refresh(renewed.json()["refresh"]).status_code == 401

    @pytest.mark.django_db(transaction=True)
    def test_concurrent_uses_of_one_refresh_token_give_one_new_token(self):
        token = login(UserFactory().username)["refresh"]
        clients = [APIClient(REMOTE_ADDR=f"10.8.0.{i}") for i in range(8)]
        responses = race([lambda c=c: c.post(REFRESH, {"refresh": token}) for c in clients])
        assert not [r for r in responses if isinstance(r, Exception)], responses
        assert sorted(r.status_code for r in responses) == [200] + [401] * 7


class TestLogout:
    def test_logout_blacklists_the_refresh_token(self):
        user = UserFactory()
        tokens = login(user.username)
        other_device = login(user.username)
        resp = APIClient().post(LOGOUT, {"refresh": tokens["refresh"]})
        assert resp.status_code == 204
        assert resp.content == b""
        assert refresh(tokens["refresh"]).status_code == 401
        assert APIClient().post(LOGOUT, {"refresh": tokens["refresh"]}).status_code == 401, "once only"
        # Other sessions of the account go on.
        assert refresh(other_device["refresh"]).status_code == 200

    @pytest.mark.parametrize(
        ("body", "status"),
        [({}, 400), ({"refresh": ""}, 400), ({"refresh": "garbage"}, 401)],
        ids=["missing", "empty", "garbage"],
    )
    def test_a_bad_body_is_refused(self, body, status):
        assert APIClient().post(LOGOUT, body).status_code == status

    def test_an_access_token_cannot_log_out(self):
        tokens = login(UserFactory().username)
        assert APIClient().post(LOGOUT, {"refresh": tokens["access"]}).status_code == 401
        assert refresh(tokens["refresh"]).status_code == 200


class TestPasswordChange:
    def test_earlier_access_and_refresh_tokens_stop_working_and_the_new_password_logs_in(self):
        user = UserFactory()
        phone, laptop = login(user.username), login(user.username)
        rotated = refresh(laptop["refresh"]).json()  # a rotated refresh token is ended too
        resp = bearer(phone["access"]).post(PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD})
        assert resp.status_code == 204, resp.content[:300]

        for access in (phone["access"], laptop["access"], rotated["access"]):
            answer = bearer(access).get(ACCOUNT)
            assert answer.status_code == 401
            assert answer["WWW-Authenticate"].startswith("Bearer")
        for old in (phone["refresh"], rotated["refresh"]):
            assert refresh(old).status_code == 401
        from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

        assert not OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True).exists()

        assert APIClient().post(TOKEN, {"username": user.username, "password": PASSWORD}).status_code == 401
        fresh = login(user.username, NEW_PASSWORD)
        assert bearer(fresh["access"]).get(ACCOUNT).status_code == 200
        assert refresh(fresh["refresh"]).status_code == 200

    def test_a_wrong_old_password_is_400_and_changes_nothing(self):
        user = UserFactory()
        tokens = login(user.username)
        resp = bearer(tokens["access"]).post(PASSWORD_CHANGE, {"old_password": "wrong", "new_password": NEW_PASSWORD})
        assert resp.status_code == 400
        assert "old_password" in resp.json()
        assert bearer(tokens["access"]).get(ACCOUNT).status_code == 200
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    @pytest.mark.parametrize("weak", ["123", "password", "12345678901"])
    def test_the_new_password_is_validated(self, weak):
        user = UserFactory()
        resp = bearer(login(user.username)["access"]).post(
            PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": weak}
        )
        assert resp.status_code == 400
        assert "new_password" in resp.json()
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    def test_anonymous_is_401(self):
        resp = APIClient().post(PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD})
        assert resp.status_code == 401

    def test_guessing_the_old_password_counts_towards_the_lockout(self, settings):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "10000/minute"},
        }
        user = UserFactory()
        client = bearer(login(user.username)["access"])
        codes = [
            client.post(PASSWORD_CHANGE, {"old_password": f"guess-{i}", "new_password": NEW_PASSWORD}).status_code
            for i in range(settings.AXES_FAILURE_LIMIT)
        ]
        assert codes == [400] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
        resp = client.post(PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD})
        assert resp.status_code == 429
        assert resp.json()["code"] == "locked_out"

    def test_a_password_set_by_an_admin_ends_the_tokens_too(self, admin_client):
        user = UserFactory()
        tokens = login(user.username)
        resp = admin_client.post(
            f"/admin/accounts/user/{user.pk}/password/",
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
        )
        assert resp.status_code == 302, resp.content[:500]
        assert bearer(tokens["access"]).get(ACCOUNT).status_code == 401
        assert refresh(tokens["refresh"]).status_code == 401
        assert bearer(login(user.username, NEW_PASSWORD)["access"]).get(ACCOUNT).status_code == 200

    def test_a_stronger_hash_of_the_same_password_keeps_the_tokens(self, settings):
        """Django re-hashes a password on login when the hasher changed: not a password change."""
        user = UserFactory()  # hashed with MD5 (tests/conftest.py)
        tokens = login(user.username)
        settings.PASSWORD_HASHERS = [
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
            "django.contrib.auth.hashers.MD5PasswordHasher",
        ]
        login(user.username)
        user.refresh_from_db()
        assert user.password.startswith("pbkdf2_sha256$"), "re-hashed"
        assert bearer(tokens["access"]).get(ACCOUNT).status_code == 200
        assert refresh(tokens["refresh"]).status_code == 200
