"""Users. A custom user model from the start, so that fields can be added later."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models

DEFAULT_TIME_ZONE = "UTC"


@lru_cache(maxsize=1)
def available_time_zones() -> frozenset[str]:
    """IANA names that ``zoneinfo`` can load here (``Europe/Berlin``, ``UTC``, ...)."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in available_time_zones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (for example 'Europe/Berlin')")


class User(AbstractUser):
    """An athlete (or an admin). Owns workouts and sensor sessions."""

    #: IANA time zone of the athlete; statistics group days, weeks and months in it.
    time_zone = models.CharField(max_length=64, default=DEFAULT_TIME_ZONE, validators=[validate_time_zone])

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """The profile's time zone (UTC if the stored name cannot be loaded)."""
        try:
            return zoneinfo.ZoneInfo(self.time_zone or DEFAULT_TIME_ZONE)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo(DEFAULT_TIME_ZONE)
