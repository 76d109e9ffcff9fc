"""Tokens (expiry, refresh, misuse), rate limits (429 with Retry-After) and the production
settings (`manage.py check --deploy` clean, debug off)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from fitness.workouts import tasks
from tests.factories import PASSWORD, UserFactory, canonical_csv

REPO = Path(__file__).resolve().parents[1]
TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
REGISTER = "/api/v1/auth/register/"
SESSIONS = "/api/v1/sessions/"


def bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def expired(token_class, user):
    token = token_class.for_user(user)
    token.set_exp(from_time=timezone.now() - dt.timedelta(days=30), lifetime=dt.timedelta(minutes=1))
    return token


@pytest.mark.django_db
class TestTokens:
    def test_expired_access_token_is_401_and_refresh_gives_a_working_one(self, anon_client):
        user = UserFactory()
        refresh = RefreshToken.for_user(user)
        resp = bearer(expired(AccessToken, user)).get(SESSIONS)
        assert resp.status_code == 401
        assert resp.json()["code"] == "token_not_valid"
        assert resp["WWW-Authenticate"].startswith("Bearer")

        renewed = anon_client.post(REFRESH, {"refresh": str(refresh)})
        assert renewed.status_code == 200
        assert bearer(renewed.json()["access"]).get(SESSIONS).status_code == 200

    def test_expired_refresh_token_is_401(self, anon_client):
        resp = anon_client.post(REFRESH, {"refresh": str(expired(RefreshToken, UserFactory()))})
        assert resp.status_code == 401
        assert resp.json()["code"] == "token_not_valid"

    def test_lifetimes_come_from_the_settings(self, settings):
        user = UserFactory()
        access = AccessToken.for_user(user)
        lifetime = dt.datetime.fromtimestamp(access["exp"], dt.UTC) - dt.datetime.fromtimestamp(access["iat"], dt.UTC)
        assert lifetime == settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
        assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"] <= dt.timedelta(hours=1)

    def test_a_refresh_token_is_no_access_token(self):
        assert bearer(RefreshToken.for_user(UserFactory())).get(SESSIONS).status_code == 401

    def test_an_access_token_cannot_refresh(self, anon_client):
        resp = anon_client.post(REFRESH, {"refresh": str(AccessToken.for_user(UserFactory()))})
        assert resp.status_code == 401

    def test_a_token_signed_with_another_key_is_401(self):
        import jwt

        claims = dict(AccessToken.for_user(UserFactory()).payload)
        forged = jwt.encode(claims, "not-the-server-key", algorithm="HS256")
        assert bearer(forged).get(SESSIONS).status_code == 401

    def test_an_unsigned_token_is_401(self):
        import jwt

        claims = dict(AccessToken.for_user(UserFactory()).payload)
        assert bearer(jwt.encode(claims, None, algorithm="none")).get(SESSIONS).status_code == 401

    def test_tokens_of_a_deleted_or_inactive_user_are_401(self, anon_client):
        gone, inactive = UserFactory(), UserFactory()
        tokens = {u.pk: RefreshToken.for_user(u) for u in (gone, inactive)}
        gone.delete()
        inactive.is_active = False
        inactive.save()
        for refresh in tokens.values():
            assert bearer(refresh.access_token).get(SESSIONS).status_code == 401
            assert anon_client.post(REFRESH, {"refresh": str(refresh)}).status_code == 401


@pytest.fixture
def rates(settings):
    """Set throttle rates for one test (they are read per request)."""

    def _set(**scopes: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **scopes},
        }

    return _set


def assert_throttled(resp) -> None:
    assert resp.status_code == 429, resp.content[:300]
    assert int(resp["Retry-After"]) > 0
    assert "throttled" in resp.json()["detail"].lower() or "available in" in resp.json()["detail"]


@pytest.mark.django_db
class TestThrottling:
    def test_token_endpoint_is_limited_per_address(self, anon_client, rates):
        rates(auth="3/minute")
        user = UserFactory()
        for _ in range(3):
            assert anon_client.post(TOKEN, {"username": user.username, "password": "wrong"}).status_code == 401
        assert_throttled(anon_client.post(TOKEN, {"username": user.username, "password": PASSWORD}))
        # The right password does not get round it, nor other auth endpoints at the same address.
        assert_throttled(anon_client.post(REFRESH, {"refresh": "x"}))
        assert_throttled(anon_client.post(REGISTER, {"username": "newcomer", "password": PASSWORD}))
        other_address = APIClient(REMOTE_ADDR="10.1.2.3")
        assert other_address.post(TOKEN, {"username": user.username, "password": PASSWORD}).status_code == 200

    def test_a_forged_forwarded_address_does_not_escape_the_limit(self, anon_client, rates):
        rates(auth="2/minute")
        for i in range(2):
            anon_client.post(TOKEN, {"username": "x", "password": "y"}, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
        resp = anon_client.post(TOKEN, {"username": "x", "password": "y"}, HTTP_X_FORWARDED_FOR="10.9.9.9")
        assert_throttled(resp)

    def test_registration_is_limited(self, anon_client, rates):
        rates(auth="2/minute")
        codes = [
            anon_client.post(REGISTER, {"username": f"user{i}", "password": PASSWORD}).status_code for i in range(3)
        ]
        assert codes[:2] == [201, 201]
        assert_throttled(anon_client.post(REGISTER, {"username": "user9", "password": PASSWORD}))

    def test_uploads_are_limited_per_user(self, api, other_api, rates, monkeypatch):
        monkeypatch.setattr(tasks.process_session, "delay", lambda session_id: None)
        rates(upload="2/minute")

        def upload(client):
            body = {"file": SimpleUploadedFile("r.csv", canonical_csv(), "text/csv"), "format": "csv"}
            return client.post(SESSIONS, body, format="multipart")

        assert [upload(api).status_code for _ in range(2)] == [202, 202]
        assert_throttled(upload(api))
        assert api.get(SESSIONS).status_code == 200, "reading is not limited by the upload rate"
        assert upload(other_api).status_code == 202, "the limit is per user"

    def test_default_rates_are_set(self, settings):
        configured = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        assert configured["auth"]
        assert configured["upload"]


# --- Production settings ----------------------------------------------------------------

#: What production sets (README, "Production"); nothing else from the local environment.
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "DJANGO_ALLOWED_HOSTS": "api.example.org",
    "DJANGO_HTTPS": "true",
}
KEEP = ("PATH", "HOME", "LANG", "DATABASE_URL", "CELERY_BROKER_URL", "PYTHONPATH")


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: os.environ[k] for k in KEEP if k in os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_the_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_the_local_defaults():
    """The same check fails without the production environment: the key is the local one."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for warning in ("security.W009", "security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in output


def test_production_settings_keep_debug_off_and_the_key_secret():
    code = (
        "from django.conf import settings as s; import json; print(json.dumps([s.DEBUG, s.SECRET_KEY, "
        "s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS]))"
    )
    result = manage("shell", "-c", code, env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    debug, key, *secure = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    assert debug is False
    assert key == PRODUCTION_ENV["DJANGO_SECRET_KEY"]
    assert secure == [True, True, True, 31_536_000]


def test_debug_is_off_unless_asked_for(settings):
    if "DJANGO_DEBUG" not in os.environ:
        assert settings.DEBUG is False


@pytest.mark.django_db
def test_errors_do_not_leak_tracebacks(api, settings):
    settings.DEBUG = False
    resp = api.get("/api/v1/sessions/not-a-uuid/")
    assert resp.status_code == 404
    assert b"Traceback" not in resp.content
