from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from .factories import UserFactory

# A local S3 server (moto) and a bucket per test: ``s3_endpoint``, ``s3_bucket``.
pytest_plugins = ["tests.fixtures.s3"]


def pytest_configure(config) -> None:
    # Without a collectstatic, WhiteNoise warns that STATIC_ROOT is absent on every start
    # (settings silence it, but pytest restores the warning filters after loading them).
    config.addinivalue_line("filterwarnings", "ignore:No directory at:UserWarning")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    """Each test stores uploads in its own folder; passwords hash fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fresh_cache():
    """Rate-limit counts (and cached plots) do not leak from one test into the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def stored_files(media_root):
    """List the files currently under MEDIA_ROOT."""

    def _list() -> list[Path]:
        return sorted(p for p in Path(media_root).rglob("*") if p.is_file())

    return _list


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


def bearer_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def client_for():
    """APIClient authenticated with a real JWT access token for the given user."""
    return bearer_client


@pytest.fixture
def api(user) -> APIClient:
    return bearer_client(user)


@pytest.fixture
def other_api(other_user) -> APIClient:
    return bearer_client(other_user)
