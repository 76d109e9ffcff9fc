"""When a recording began: the client's ``started_at``, else the recording's own clock, else the upload.

Sets are dated from it (``ExerciseSet.performed_at = session.started_at + start_s``), so history,
statistics, streaks and records follow when the workout happened, not when it was synced.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from inference.io import Recording, RecordingError

if TYPE_CHECKING:
    from fitness.accounts.models import User

logger = logging.getLogger(__name__)

#: The earliest recording time accepted (no phone app recorded inertial data before).
EARLIEST_STARTED_AT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: How far past the server's clock a recording time may be (a phone's clock runs ahead).
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
#: Formats whose start time the client wrote on purpose (``start_time``): out of bounds is a
#: 400. Other formats' clocks (CaRa's Unix ms, Exermote's wall clock) are ignored out of bounds.
EXPLICIT_START_FORMATS = ("csv", "json")

STARTED_AT_RULE = (
    "ISO 8601 date-time with a UTC offset (Z or +HH:MM), from 2000-01-01T00:00:00Z to at most "
    f"{int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes after the server's clock"
)


def started_at_problem(value: dt.datetime, *, now: dt.datetime) -> str | None:
    """Why ``value`` cannot be a recording's start (naive, before 2000, in the future), or None."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "needs a UTC offset (Z or +HH:MM)"
    ahead = f"must not be in the future (more than {int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes ahead)"
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:  # beyond year 1 or 9999 once in UTC: which end the local date says
        if value.year >= dt.MAXYEAR:
            return f"{ahead}; this one is even beyond the last supported date (9999-12-31 in UTC)"
        return f"must not be before {EARLIEST_STARTED_AT:%Y-%m-%d}"
    if utc < EARLIEST_STARTED_AT:
        return f"must not be before {EARLIEST_STARTED_AT:%Y-%m-%d}"
    if utc > now + MAX_CLOCK_SKEW:
        return ahead
    return None


def recording_started_at(
    *, recording: Recording, user: User, started_at: dt.datetime | None, now: dt.datetime
) -> dt.datetime:
    """The instant (UTC) the recording's first sample was taken.

    1. ``started_at`` from the client (already checked by :func:`started_at_problem`);
    2. ``recording.start_time``: aware as given; naive (Exermote's wall clock, which carries no
       zone) read in the user's profile time zone;
    3. ``now`` (the upload time).

    Raises:
        RecordingError: field ``file``: a canonical file's ``start_time`` is out of bounds.
    """
    if started_at is not None:
        return started_at.astimezone(dt.UTC)
    start = recording.start_time
    if start is None:
        return now
    if start.tzinfo is None:
        start = start.replace(tzinfo=user.tzinfo)
    problem = started_at_problem(start, now=now)
    if problem is None:
        return start.astimezone(dt.UTC)
    if recording.source_format in EXPLICIT_START_FORMATS:
        raise RecordingError(f"start_time {problem}", field="file")
    logger.info("the %s recording's clock (%s) %s; dated by its upload", recording.source_format, start, problem)
    return now
