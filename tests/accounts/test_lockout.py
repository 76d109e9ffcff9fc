"""Lockout after repeated failed logins (django-axes), on every login path: the admin login
form and the JWT token endpoint. Locked by the pair (account, address), and by address (for
any account) after a looser limit across accounts; a stranger locks out neither the owner on
another address nor other users of the address; the pair's failures are forgotten when the
account logs in from that address; the lockout ends after the cool-off. Real requests, real
database (axes keeps its counts in ``axes_accessattempt``).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/"
TOKEN = "/api/v1/auth/token/"
LIMIT = 10  # AXES_FAILURE_LIMIT's default
ADDRESS_LIMIT = 50  # FITNESS_LOGIN_ADDRESS_FAILURE_LIMIT's default


@pytest.fixture(autouse=True)
def generous_throttle(settings):
    """The per-address request rate (fitness/core/throttling.py) is not what these tests are about."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "10000/minute"},
    }


def from_address(address: str) -> APIClient:
    return APIClient(REMOTE_ADDR=address)


def login(client: APIClient, username: str, password: str):
    return client.post(TOKEN, {"username": username, "password": password})


def assert_locked_out(resp) -> None:
    assert resp.status_code == 429, resp.content[:300]
    body = resp.json()
    assert body["code"] == "locked_out"
    assert "too many failed logins" in body["detail"].lower()
    assert int(resp["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert "access" not in body


def access_attempts():
    from axes.models import AccessAttempt  # django-axes' table of failed logins

    return AccessAttempt.objects


def test_the_defaults():
    assert settings.AXES_FAILURE_LIMIT == LIMIT
    assert settings.FITNESS_LOGIN_ADDRESS_FAILURE_LIMIT == ADDRESS_LIMIT
    assert dt.timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_ENABLED


class TestAdminLogin:
    def test_locked_out_at_the_limit_and_the_right_password_does_not_get_in(self, client):
        staff = UserFactory(is_staff=True, is_superuser=True)
        codes = [
            client.post(ADMIN_LOGIN, {"username": staff.username, "password": f"wrong-{i}"}).status_code
            for i in range(30)
        ]
        assert codes[: LIMIT - 1] == [200] * (LIMIT - 1), "the form again, with an error"
        assert set(codes[LIMIT - 1 :]) == {429}, codes
        resp = client.post(ADMIN_LOGIN, {"username": staff.username, "password": PASSWORD})
        assert resp.status_code == 429
        assert b"too many login attempts" in resp.content.lower()
        assert "_auth_user_id" not in client.session
        assert client.get("/admin/").status_code == 302, "still not logged in"

    def test_a_success_below_the_limit_forgets_the_failures(self, client):
        staff = UserFactory(is_staff=True)
        for _ in range(LIMIT - 1):
            assert client.post(ADMIN_LOGIN, {"username": staff.username, "password": "wrong"}).status_code == 200
        assert client.post(ADMIN_LOGIN, {"username": staff.username, "password": PASSWORD}).status_code == 302
        client.logout()
        for _ in range(LIMIT - 1):
            assert client.post(ADMIN_LOGIN, {"username": staff.username, "password": "wrong"}).status_code == 200
        assert client.post(ADMIN_LOGIN, {"username": staff.username, "password": PASSWORD}).status_code == 302


class TestTokenEndpoint:
    def test_a_stranger_locks_the_account_from_the_strangers_address_only(self):
        """Issue 29, item 11: anyone anywhere could lock any account by guessing wrong."""
        user = UserFactory()
        stranger = from_address("10.0.0.1")
        codes = [login(stranger, user.username, "wrong").status_code for _ in range(LIMIT)]
        assert codes == [401] * (LIMIT - 1) + [429]
        assert_locked_out(login(stranger, user.username, PASSWORD))
        # The owner, on another address, is never locked out by a stranger.
        assert login(from_address("10.0.1.1"), user.username, PASSWORD).status_code == 200
        # and the owner's login forgets nothing of the stranger's pair
        assert_locked_out(login(stranger, user.username, PASSWORD))

    def test_a_fresh_account_on_the_same_address_is_not_locked_out(self):
        """Issue 29, item 11: ten wrong passwords on one account from 127.0.0.1 locked out every
        user of that address (gyms, offices and carrier NAT put many users behind one)."""
        victim, bystander = UserFactory(), UserFactory()
        shared = from_address("127.0.0.1")
        for _ in range(LIMIT):
            login(shared, victim.username, "wrong")
        assert_locked_out(login(shared, victim.username, PASSWORD))
        resp = login(shared, bystander.username, PASSWORD)
        assert resp.status_code == 200, resp.content[:300]
        fresh = from_address("127.0.0.1").post(
            "/api/v1/auth/register/", {"username": "newcomer", "password": "correct-horse-battery-9"}
        )
        assert fresh.status_code == 201, fresh.content[:300]
        assert login(shared, "newcomer", "correct-horse-battery-9").status_code == 200

    def test_password_spraying_locks_the_address_for_every_account(self):
        users = [UserFactory() for _ in range(3)]
        client = from_address("10.0.2.1")
        codes = [login(client, f"sprayed{i}", "wrong").status_code for i in range(ADDRESS_LIMIT)]
        assert codes == [401] * (ADDRESS_LIMIT - 1) + [429]
        for user in users:
            assert_locked_out(login(client, user.username, PASSWORD))
        assert login(from_address("10.0.2.2"), users[0].username, PASSWORD).status_code == 200

    def test_below_the_address_limit_other_accounts_of_the_address_log_in(self):
        client = from_address("10.0.2.3")
        for i in range(ADDRESS_LIMIT - 1):
            assert login(client, f"sprayed{i}", "wrong").status_code == 401
        assert login(client, UserFactory().username, PASSWORD).status_code == 200

    def test_a_login_forgets_the_pairs_failures_only(self):
        user, victim = UserFactory(), UserFactory()
        client = from_address("10.0.3.1")
        for _ in range(LIMIT - 1):
            assert login(client, user.username, "wrong").status_code == 401
        assert login(client, user.username, PASSWORD).status_code == 200
        for _ in range(LIMIT - 1):
            assert login(client, user.username, "wrong").status_code == 401
        assert login(client, user.username, PASSWORD).status_code == 200
        assert not access_attempts().filter(username=user.username).exists()
        # A login to one's own account does not forget the address's failures on others.
        for _ in range(LIMIT - 1):
            assert login(client, victim.username, "wrong").status_code == 401
        assert login(client, user.username, PASSWORD).status_code == 200
        assert_locked_out(login(client, victim.username, "wrong"))
        # nor the account's failures from another address
        other = from_address("10.0.3.2")
        for _ in range(LIMIT - 1):
            assert login(other, user.username, "wrong").status_code == 401
        assert login(client, user.username, PASSWORD).status_code == 200
        assert_locked_out(login(other, user.username, "wrong"))

    def test_the_lockout_ends_after_the_cool_off(self):
        user = UserFactory()
        client = from_address("10.0.4.1")
        for _ in range(LIMIT):
            login(client, user.username, "wrong")
        assert_locked_out(login(client, user.username, PASSWORD))
        past = dt.timedelta(minutes=16)
        for attempt in access_attempts().all():
            access_attempts().filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - past)
        resp = login(client, user.username, PASSWORD)
        assert resp.status_code == 200, resp.content[:300]
        assert set(resp.json()) == {"access", "refresh"}

    def test_a_forged_forwarded_address_does_not_escape_the_address_lockout(self):
        client = from_address("10.0.5.1")
        for i in range(ADDRESS_LIMIT):
            body = {"username": f"nobody{i}", "password": "wrong"}
            client.post(TOKEN, body, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
        user = UserFactory()
        resp = client.post(TOKEN, {"username": user.username, "password": PASSWORD}, HTTP_X_FORWARDED_FOR="192.0.2.99")
        assert_locked_out(resp)

    def test_an_overlong_username_is_400_not_a_server_error(self):
        resp = login(from_address("10.0.6.1"), "u" * 300, "wrong")
        assert resp.status_code == 400
        assert "username" in resp.json()


def test_limit_and_cool_off_come_from_the_environment():
    env = {
        **os.environ,
        "AXES_FAILURE_LIMIT": "3",
        "AXES_COOLOFF_MINUTES": "2.5",
    }
    code = "from django.conf import settings as s; print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds())"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "3 150.0"
