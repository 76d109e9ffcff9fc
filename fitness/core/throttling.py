"""Request rate limits: 429 with ``Retry-After`` above the rate of the scope.

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (environment variables in
``settings.py``) and are read per request, not frozen at import as DRF's own classes do,
so that a changed setting applies at once. A scope without a rate is not limited.
Counts are kept in the default cache (per process unless ``CACHE_URL`` names a shared one).
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class _RateFromSettings:
    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class AuthRateThrottle(_RateFromSettings, SimpleRateThrottle):
    """Registration and tokens: per client address, whoever the request claims to be."""

    scope = "auth"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UploadRateThrottle(_RateFromSettings, UserRateThrottle):
    """Recording uploads: per user (per address for anonymous requests, which get 401 anyway)."""

    scope = "upload"


class RedeliverRateThrottle(_RateFromSettings, UserRateThrottle):
    """Webhook redeliveries: per user (each queues a round of POSTs to the user's receiver)."""

    scope = "redeliver"
