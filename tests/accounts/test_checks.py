"""System checks of fitness.accounts: with DEBUG off, rate limits and lockouts need a cache
that all processes share (``manage.py check --deploy`` warns about a process-local one)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core import checks

REPO = Path(__file__).resolve().parents[2]
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://redis:6379/1"}}


def deploy_warnings(**kwargs) -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks(tags=[checks.Tags.security], **kwargs) if m.id == "accounts.W001"]


@pytest.mark.parametrize(
    "backend", ["django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache"]
)
def test_a_process_local_cache_is_flagged_with_debug_off(settings, backend):
    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": backend}}
    [warning] = deploy_warnings(include_deployment_checks=True)
    assert warning.level == checks.WARNING
    assert "process" in warning.msg
    assert "CACHE_URL" in warning.hint
    assert "shared cache" in warning.hint


def test_a_shared_cache_is_not_flagged(settings):
    settings.DEBUG = False
    settings.CACHES = REDIS
    assert deploy_warnings(include_deployment_checks=True) == []


def test_only_a_deployment_check_with_debug_off(settings):
    settings.CACHES = LOCMEM
    settings.DEBUG = False
    assert deploy_warnings(include_deployment_checks=False) == [], "`make run` (one web process) is not warned"
    settings.DEBUG = True
    assert deploy_warnings(include_deployment_checks=True) == []


def test_compose_gives_the_app_a_shared_cache_apart_from_the_broker():
    compose = yaml.safe_load((REPO / "docker" / "compose.yml").read_text())
    for service in ("migrate", "web", "worker", "beat"):
        environment = compose["services"][service]["environment"]
        cache, broker = environment["CACHE_URL"], environment["CELERY_BROKER_URL"]
        assert cache.startswith("redis://redis:6379/"), service
        assert cache.rsplit("/", 1)[1] != broker.rsplit("/", 1)[1], "a database of its own on the broker's Redis"


#: A Redis database of the tests' own (the broker uses 0, the benchmarks 13).
REDIS_URL = os.environ.get("TEST_CACHE_REDIS_URL", "redis://127.0.0.1:6379/14")

COUNT_ONE_REQUEST = """
from django.test import RequestFactory
from fitness.core.throttling import AuthRateThrottle
request = RequestFactory().post("/api/v1/auth/token/", REMOTE_ADDR="{address}")
print("allowed" if AuthRateThrottle().allow_request(request, None) else "throttled")
"""


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.skipif(not redis_reachable(), reason=f"no Redis at {REDIS_URL}")
def test_with_cache_url_separate_processes_share_the_rate_limit():
    """What CACHE_URL buys: three processes, one count (rate 2/minute for the address)."""
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    env = {**os.environ, "CACHE_URL": REDIS_URL, "API_AUTH_THROTTLE_RATE": "2/minute"}
    answers = [
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", COUNT_ONE_REQUEST.format(address=address)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
        for _ in range(3)
    ]
    assert answers == ["allowed", "allowed", "throttled"]
