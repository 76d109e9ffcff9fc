import pytest
from django.contrib.auth import get_user_model

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"
TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"


def test_register_then_obtain_and_use_tokens(anon_client):
    resp = anon_client.post(REGISTER, {"username": "ada", "password": PASSWORD})
    assert resp.status_code == 201
    assert resp.json()["username"] == "ada"
    assert "password" not in resp.json()
    user = get_user_model().objects.get(username="ada")
    assert user.check_password(PASSWORD)

    tokens = anon_client.post(TOKEN, {"username": "ada", "password": PASSWORD})
    assert tokens.status_code == 200
    assert set(tokens.json()) == {"access", "refresh"}

    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    assert anon_client.get("/api/v1/sessions/").status_code == 200

    refreshed = anon_client.post(REFRESH, {"refresh": tokens.json()["refresh"]})
    assert refreshed.status_code == 200
    assert "access" in refreshed.json()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "bob", "password": "123"}, "password"),
        ({"username": "bob", "password": "password"}, "password"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "bad name!", "password": PASSWORD}, "username"),
        ({"password": PASSWORD}, "username"),
    ],
)
def test_register_rejects_invalid_input(anon_client, payload, field):
    resp = anon_client.post(REGISTER, payload)
    assert resp.status_code == 400
    assert field in resp.json()
    assert not get_user_model().objects.exists()


def test_register_rejects_taken_username(anon_client):
    UserFactory(username="ada")
    resp = anon_client.post(REGISTER, {"username": "ADA", "password": PASSWORD})
    assert resp.status_code == 400
    assert "username" in resp.json()
    assert get_user_model().objects.count() == 1


def test_wrong_password_gets_no_token(anon_client):
    UserFactory(username="ada")
    assert anon_client.post(TOKEN, {"username": "ada", "password": "wrong-password"}).status_code == 401


def test_invalid_bearer_token_is_401(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert anon_client.get("/api/v1/sessions/").status_code == 401


def test_refresh_with_garbage_is_401(anon_client):
    assert anon_client.post(REFRESH, {"refresh": "garbage"}).status_code == 401
