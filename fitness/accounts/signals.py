"""Signals of the accounts app.

- :data:`account_export` lets apps that build on accounts (webhooks) add their data to the
  account export (:func:`fitness.accounts.selectors.user_export`), so that accounts imports
  none of them.
"""

from __future__ import annotations

from django.dispatch import Signal

#: Sent by ``user_export`` with ``sender`` the user model and ``user``. Each receiver returns a
#: dict of top-level export sections, ``{name: JSON-ready data}`` (datetimes left to the
#: encoder); a name the export already has is an error. Sent with ``send``, not ``send_robust``:
#: an export that cannot gather a section fails rather than leave it out unnoticed.
account_export = Signal()
