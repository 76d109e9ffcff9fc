#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

Without ``DJANGO_SECRET_KEY`` in the environment it uses this install's local key, the one
`make run` passes (``DJANGO_SECRET_KEY_FILE``, default ``var/secret_key``), when that file exists;
so ``manage.py createsuperuser`` works as the README says. Where neither exists (a production
host) settings still refuse to start with DEBUG off.
"""

import os
import sys
from pathlib import Path


def local_secret_key() -> str | None:
    """The key in ``DJANGO_SECRET_KEY_FILE`` (default ``var/secret_key`` beside this file), or None."""
    path = Path(os.environ.get("DJANGO_SECRET_KEY_FILE") or Path(__file__).resolve().parent / "var" / "secret_key")
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fitness.settings")
    if not os.environ.get("DJANGO_SECRET_KEY") and (key := local_secret_key()):
        os.environ["DJANGO_SECRET_KEY"] = key
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
