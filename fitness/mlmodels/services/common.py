"""What the registry's services share."""

from __future__ import annotations

import json

#: Longest error text stored on a version.
MAX_ERROR_CHARS = 2000


class RegistryError(ValueError):
    """A registry operation that is refused; the message says why (shown to admins)."""


def jsonable(value: dict) -> dict:
    """Plain JSON types (NumPy scalars become floats)."""
    return json.loads(json.dumps(value, default=float))
