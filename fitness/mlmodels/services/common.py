"""What the registry's services share."""

from __future__ import annotations

import json

#: Longest error text stored on a version.
MAX_ERROR_CHARS = 2000


class RegistryError(ValueError):
    """A registry operation that is refused; the message says why (shown to admins), ``field``
    which request field it is about (None: the caller's default)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def jsonable(value: dict) -> dict:
    """Plain JSON types (NumPy scalars become floats)."""
    return json.loads(json.dumps(value, default=float))
