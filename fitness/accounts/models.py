"""Users. A custom user model from the start, so that fields can be added later."""

from __future__ import annotations

import unicodedata
import zoneinfo
from functools import lru_cache

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

DEFAULT_TIME_ZONE = "UTC"


@lru_cache(maxsize=1)
def available_time_zones() -> frozenset[str]:
    """IANA names that ``zoneinfo`` can load here (``Europe/Berlin``, ``UTC``, ...)."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in available_time_zones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (for example 'Europe/Berlin')")


USERNAME_TAKEN = "a user with that username already exists"
#: Scripts that one name may mix: Japanese writes kanji with kana, Korean hangul with hanja.
_SCRIPT_FAMILIES = {"CJK": "HAN", "HIRAGANA": "HAN", "KATAKANA": "HAN", "HANGUL": "HAN", "BOPOMOFO": "HAN"}


def username_scripts(value: str) -> set[str]:
    """The scripts of the letters and digits of ``value``: the first word of each character's
    Unicode name (``LATIN``, ``CYRILLIC``, ``GREEK``, ``ARABIC-INDIC`` for its digits, ...). ASCII
    digits and the punctuation usernames allow (``_ . @ + -``) belong to none."""
    scripts = set()
    for char in value:
        if char.isascii() and not char.isalpha():
            continue
        script = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
        scripts.add(_SCRIPT_FAMILIES.get(script, script))
    return scripts


def validate_username_script(value: str) -> None:
    """Refuse a name whose letters come from several scripts (``"g\u0430by"``, with a Cyrillic
    a, passes for ``gaby``). Names all in one script, Latin or not, are fine."""
    scripts = username_scripts(value)
    if len(scripts) > 1:
        raise ValidationError(
            f"a username is written in one script; this one mixes {', '.join(sorted(scripts)).lower()}"
        )


class User(AbstractUser):
    """An athlete (or an admin). Owns workouts and sensor sessions."""

    #: IANA time zone of the athlete; statistics group days, weeks and months in it.
    time_zone = models.CharField(max_length=64, default=DEFAULT_TIME_ZONE, validators=[validate_time_zone])
    #: Raised by every password change of a saved user; JWTs carry the value they were issued
    #: with (fitness/accounts/tokens.py) and are refused once it differs.
    token_generation = models.PositiveIntegerField(
        default=0, editable=False, help_text="raised by every password change: earlier tokens stop working"
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            # One account per name whatever its case, also under concurrent registrations.
            models.UniqueConstraint(
                Lower("username"), name="accounts_user_username_folded_unique", violation_error_message=USERNAME_TAKEN
            ),
        ]

    def clean(self) -> None:
        """Django's (the username NFKC-normalised), then one script per username."""
        super().clean()
        try:
            validate_username_script(self.username or "")
        except ValidationError as exc:
            raise ValidationError({"username": exc.messages}) from exc

    def set_password(self, raw_password: str | None) -> None:
        """Set the password; for a saved user this also ends every earlier token (once saved)."""
        super().set_password(raw_password)
        if not self._state.adding:
            self.token_generation += 1

    def check_password(self, raw_password: str) -> bool:
        """Django's check. Its re-hash with a newer hasher (saved as ``password`` only) is no
        password change: the tokens stay valid."""
        generation = self.token_generation
        try:
            return super().check_password(raw_password)
        finally:
            self.token_generation = generation

    async def acheck_password(self, raw_password: str) -> bool:
        generation = self.token_generation
        try:
            return await super().acheck_password(raw_password)
        finally:
            self.token_generation = generation

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """The profile's time zone (UTC if the stored name cannot be loaded)."""
        try:
            return zoneinfo.ZoneInfo(self.time_zone or DEFAULT_TIME_ZONE)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo(DEFAULT_TIME_ZONE)
