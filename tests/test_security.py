"""Tokens (expiry, refresh, misuse), rate limits (429 with Retry-After) and the production
settings (`manage.py check --deploy` clean, debug off)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
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
    # Rate limits and lockouts shared by all web processes (no server is reached by `check`).
    "CACHE_URL": "redis://127.0.0.1:6379/1",
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


def test_check_deploy_flags_what_production_must_set():
    """With only a good key the same check fails: hosts, HTTPS, HSTS and secure cookies are missing."""
    key_only = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(64)}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=key_only)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016", "accounts.W001"):
        assert warning in output


def test_check_deploy_flags_a_process_local_cache():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "CACHE_URL"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "accounts.W001" in output
    assert "CACHE_URL" in output


# --- The secret key ---------------------------------------------------------------------

#: The key that settings.py used to fall back on (it signed valid tokens wherever it was left).
OLD_DEFAULT_KEY = "local-dev-only-not-secret-8f2c1d0b7a"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (None, "not set"),
        ("", "not set"),
        ("x" * 10 + secrets.token_urlsafe(20), "shorter than 50"),
        (OLD_DEFAULT_KEY, "published default"),
        ("django-insecure-" + secrets.token_urlsafe(48), "published default"),
        ("ab" * 40, "fewer than 5 different"),
    ],
    ids=["missing", "empty", "short", "old-default", "django-insecure", "few-characters"],
)
def test_with_debug_off_a_missing_short_or_known_key_refuses_to_start(key, reason, tmp_path):
    env = {"DJANGO_SECRET_KEY_FILE": str(tmp_path / "secret_key")}
    if key is not None:
        env["DJANGO_SECRET_KEY"] = key
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert reason in result.stderr
    assert not (tmp_path / "secret_key").exists(), "with DEBUG off no key is made up"


def test_with_debug_on_a_key_is_made_once_per_install_and_kept(tmp_path):
    key_file = tmp_path / "var" / "secret_key"
    env = {"DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY_FILE": str(key_file)}
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = manage("shell", "-c", code, env=env)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip().splitlines()[-1]
    assert key_file.read_text().strip() == key
    assert len(key) >= 50
    assert key != OLD_DEFAULT_KEY
    assert key_file.stat().st_mode & 0o077 == 0, "only the owner can read it"
    again = manage("shell", "-c", code, env=env)
    assert again.stdout.strip().splitlines()[-1] == key


def test_manage_py_uses_the_local_key_like_make_run(tmp_path):
    """The README's `manage.py createsuperuser` on a checkout where `make run` made var/secret_key:
    no key exported by hand, non-interactive as Django allows (DJANGO_SUPERUSER_*, --noinput)."""
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(50) + "\n")
    env = {"DJANGO_SECRET_KEY_FILE": str(key_file), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    admin = {"DJANGO_SUPERUSER_USERNAME": "root", "DJANGO_SUPERUSER_PASSWORD": "a-long-admin-pass-7", **env}
    admin["DJANGO_SUPERUSER_EMAIL"] = "root@example.org"
    created = manage("createsuperuser", "--noinput", env=admin)
    assert created.returncode == 0, created.stderr
    code = "from fitness.accounts.models import User; print(User.objects.get(username='root').is_superuser)"
    shown = manage("shell", "-c", code, env=env)
    assert shown.stdout.strip().splitlines()[-1] == "True", shown.stderr
    # Without the file (a production host) it refuses as before.
    key_file.unlink()
    refused = manage("createsuperuser", "--noinput", env=admin)
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in refused.stderr


def make_env(**extra: str) -> dict[str, str]:
    """The environment of a `make` call: this one without DJANGO_SECRET_KEY."""
    return {**{k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}, **extra}


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_make_passes_a_random_key_kept_in_var(tmp_path):
    """`make run` and `make migrate` (every target) export DJANGO_SECRET_KEY from var/secret_key,
    made once per install; a DJANGO_SECRET_KEY of the environment wins."""
    key_file = tmp_path / "secret_key"
    show = ["make", "-s", "--eval", 'show-key: ; @printf %s "$$DJANGO_SECRET_KEY"', "show-key"]
    first = subprocess.run(
        [*show, f"SECRET_KEY_FILE={key_file}"], cwd=REPO, env=make_env(), capture_output=True, text=True, check=True
    )
    assert first.stdout == key_file.read_text().strip()
    assert len(first.stdout) >= 50
    assert key_file.stat().st_mode & 0o077 == 0
    again = subprocess.run(
        [*show, f"SECRET_KEY_FILE={key_file}"], cwd=REPO, env=make_env(), capture_output=True, text=True, check=True
    )
    assert again.stdout == first.stdout
    mine = secrets.token_urlsafe(50)
    given = subprocess.run(
        [*show, f"SECRET_KEY_FILE={key_file}"],
        cwd=REPO,
        env=make_env(DJANGO_SECRET_KEY=mine),
        capture_output=True,
        text=True,
        check=True,
    )
    assert given.stdout == mine
    # What `make run` starts (DEBUG off) accepts the key.
    result = manage("check", env={"DJANGO_SECRET_KEY": first.stdout})
    assert result.returncode == 0, result.stderr


def test_tokens_signed_with_the_old_default_key_are_refused(db):
    """A token forged with the key that used to be committed does not authenticate."""
    import jwt

    user = UserFactory()
    claims = dict(AccessToken.for_user(user).payload)
    forged = jwt.encode(claims, OLD_DEFAULT_KEY, algorithm="HS256")
    assert bearer(forged).get(SESSIONS).status_code == 401
    assert bearer(AccessToken.for_user(user)).get(SESSIONS).status_code == 200


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
