"""System checks (``manage.py check --deploy``) for what keeps accounts safe in production."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning

#: Cache backends whose counts live in (or never leave) one process.
PROCESS_LOCAL_CACHES = frozenset(
    {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }
)


@register(Tags.security, deploy=True)
def check_shared_cache(app_configs=None, **kwargs) -> list[CheckMessage]:
    """With DEBUG off, the default cache must be shared: the API's rate limits (login,
    registration, uploads) are counted in it, per process otherwise."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if settings.DEBUG or backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        CheckWarning(
            f"The default cache ({backend}) is process-local: each web process counts the rate limits "
            "(token, registration, upload) on its own, so N processes allow N times the configured rates.",
            hint="Set CACHE_URL to a shared cache, e.g. CACHE_URL=redis://redis:6379/1 (a Redis database "
            "apart from the broker's).",
            id="accounts.W001",
        )
    ]
