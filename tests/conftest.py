import hashlib
from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from .factories import UserFactory

# A local S3 server (moto) and a bucket per test: ``s3_endpoint``, ``s3_bucket``.
# The learned counter's file, where one exists: ``learned_counter``.
pytest_plugins = ["tests.fixtures.s3", "tests.fixtures.counter"]


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


#: Results of the model check's child process (inference.model_check) that passed, per file
#: bytes and limits, with the export it wrote: one per test process.
_PASSED_MODEL_CHECKS: dict[tuple, tuple] = {}


def _digest(path) -> str | None:
    return None if path is None else hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def reuse_passed_model_checks(request, monkeypatch):
    """A model file that passed the memory-capped check in a child process passes it again: for the
    same bytes and limits its result (and export) is reused within a test process, so that the
    tests that register the same small models do not each start TensorFlow in a child. A check
    that fails always runs; test files about the check itself are marked ``real_model_check``."""
    if request.node.get_closest_marker("real_model_check"):
        return
    from inference import model_check

    real = model_check.run_model_check

    def run_model_check(model_path, *, memory_limit_mb, timeout_s, runtime_path=None, export_path=None):
        key = (_digest(model_path), _digest(runtime_path), export_path is not None, memory_limit_mb, timeout_s)
        if key in _PASSED_MODEL_CHECKS:
            checked, export = _PASSED_MODEL_CHECKS[key]
            if export_path is not None:
                Path(export_path).write_bytes(export)
            return checked
        checked = real(
            model_path,
            memory_limit_mb=memory_limit_mb,
            timeout_s=timeout_s,
            runtime_path=runtime_path,
            export_path=export_path,
        )
        _PASSED_MODEL_CHECKS[key] = (checked, Path(export_path).read_bytes() if export_path is not None else b"")
        return checked

    monkeypatch.setattr(model_check, "run_model_check", run_model_check)


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
