"""Sync with deletions: what changed in a user's sets or repetitions since a cursor (reads only).

A sync page lists, in ``(time, kind, id)`` order, the rows written (``updated_at``) and the rows
deleted (``DeletedRow.deleted_at``) in the window ``[since, horizon)``. The horizon lags the
server's clock by ``FITNESS_SYNC_LAG_S``: a row is stamped when its transaction writes it but
becomes visible when that transaction commits, so a row stamped ``t`` may appear after rows
stamped later than ``t``. Every write transaction of sets and repetitions (counting, corrections,
deletes) lasts far less than the lag, so by the time the horizon passes ``t`` the row is committed;
the next window starts at the horizon, and no committed row is ever skipped. The cost: a change
reaches sync clients ``FITNESS_SYNC_LAG_S`` late (webhooks and ``GET /sessions/{id}/`` are immediate).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import DeletedRow

ROW, DELETED = 0, 1
#: The start of a full sync (no ``updated_since``): before any row.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


#: Earliest and latest instant a cursor may hold (UTC; the API's date range, see
#: ``fitness.workouts.api.filtersets.MIN_DATE``/``MAX_DATE``).
_EARLIEST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
_LATEST = dt.datetime(9999, 12, 30, 23, 59, 59, tzinfo=dt.UTC)
_SALT = "fitness.workouts.sync.cursor"


class CursorError(ValueError):
    """A ``cursor`` that this server did not hand out (for this endpoint and user)."""


class ResyncRequiredError(Exception):
    """The cursor is older than the tombstones kept: the client must sync in full."""


@dataclass(frozen=True)
class Window:
    """``[since, horizon)`` and the key ``(time, kind, id)`` after which the next page starts."""

    since: dt.datetime
    horizon: dt.datetime
    after: tuple[dt.datetime, int, int] | None = None

    def encode(self, after: tuple[dt.datetime, int, int], *, scope: str = "") -> str:
        """A signed, URL-safe cursor of this window resuming after ``after``, valid for ``scope``
        only (the endpoint and user it was handed out to)."""
        times = [v.astimezone(dt.UTC).isoformat() for v in (self.since, self.horizon, after[0])]
        return signing.dumps([*times, after[1], after[2]], salt=f"{_SALT}:{scope}")

    @classmethod
    def decode(cls, token: str, *, scope: str = "") -> Window:
        """The window of a cursor from :meth:`encode` with the same ``scope``, its dates in UTC.

        Raises:
            CursorError: the token is not such a cursor (forged, altered, another endpoint's or
                user's, or signed with another key), or holds dates outside the API's range.
        """
        try:
            since, horizon, t, kind, pk = signing.loads(token, salt=f"{_SALT}:{scope}")
            times = [parse_datetime(v) for v in (since, horizon, t)]
            if any(v is None or v.tzinfo is None for v in times) or kind not in (ROW, DELETED) or type(pk) is not int:
                raise ValueError
            times = [v.astimezone(dt.UTC) for v in times]
            if not all(_EARLIEST <= v <= _LATEST for v in times) or not times[0] <= times[1]:
                raise ValueError
        except (signing.BadSignature, ValueError, TypeError, OverflowError) as exc:
            raise CursorError("not a cursor of this endpoint: follow `next` as given") from exc
        return cls(times[0], times[1], (times[2], kind, pk))


def check_window(window: Window, *, now: dt.datetime | None = None) -> None:
    """Refuse a cursor's window that a fresh sync from its ``since`` would refuse.

    Raises:
        ResyncRequiredError: ``since`` is older than ``FITNESS_SYNC_TOMBSTONE_DAYS`` (tombstones purged).
    """
    now = now or timezone.now()
    if window.since != EPOCH and window.since < now - dt.timedelta(days=settings.FITNESS_SYNC_TOMBSTONE_DAYS):
        raise ResyncRequiredError


def open_window(*, since: dt.datetime | None, now: dt.datetime | None = None) -> Window:
    """The window from ``since`` (None: a full sync, from the first row) to the lagging horizon.

    Raises:
        ResyncRequiredError: ``since`` is older than ``FITNESS_SYNC_TOMBSTONE_DAYS`` (tombstones purged).
    """
    now = now or timezone.now()
    if since is None:
        since = EPOCH
    elif since < now - dt.timedelta(days=settings.FITNESS_SYNC_TOMBSTONE_DAYS):
        raise ResyncRequiredError
    horizon = now - dt.timedelta(seconds=settings.FITNESS_SYNC_LAG_S)
    return Window(since=since, horizon=max(horizon, since))


def _after(field: str, kind: int, after: tuple[dt.datetime, int, int] | None, id_field: str) -> Q:
    if after is None:
        return Q()
    t, k, pk = after
    later = Q(**{f"{field}__gt": t})
    if kind > k:
        return later | Q(**{field: t})
    if kind == k:
        return later | Q(**{field: t, f"{id_field}__gt": pk})
    return later


def sync_page(
    *, rows: QuerySet, user, kind: str, window: Window, limit: int
) -> tuple[list[tuple[dt.datetime, int, int, object]], Window | None]:
    """Up to ``limit`` changes of the window after its key: ``(time, ROW, id, row)`` for a written
    row of ``rows`` (the user's counted sets or repetitions), ``(time, DELETED, id, None)`` for a
    tombstone of ``kind``. Returns them and the window of the next page (None: this was the last)."""
    changed = (
        rows.filter(updated_at__gte=window.since, updated_at__lt=window.horizon)
        .filter(_after("updated_at", ROW, window.after, "id"))
        .order_by("updated_at", "id")[: limit + 1]
    )
    deleted = (
        DeletedRow.objects.filter(user=user, kind=kind, deleted_at__gte=window.since, deleted_at__lt=window.horizon)
        .filter(_after("deleted_at", DELETED, window.after, "row_id"))
        .order_by("deleted_at", "row_id")
        .values_list("deleted_at", "row_id")[: limit + 1]
    )
    items = [(row.updated_at, ROW, row.pk, row) for row in changed]
    items += [(at, DELETED, pk, None) for at, pk in deleted]
    items.sort(key=lambda item: item[:3])
    if len(items) <= limit:
        return items, None
    items = items[:limit]
    return items, Window(window.since, window.horizon, items[-1][:3])
