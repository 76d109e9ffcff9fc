"""The statistics' query parameters are bounded: no time series longer than the cap, no date
so close to the ends of Python's calendar that a time-zone change or a period added overflows
(found by a security review: 739,952 rows for ``from=0001-01-01``; 500s at the extremes)."""

import datetime as dt

import pytest

from fitness.stats.api.serializers import MAX_PERIODS
from fitness.stats.selectors import add_periods, local_today, period_start
from tests.factories import counted_session

pytestmark = pytest.mark.django_db

EXERCISES = "/api/v1/stats/exercises/"
TIMESERIES = "/api/v1/stats/timeseries/"
#: Ahead of UTC in year 1 and in 9999 (local midnight of 0001-01-01 is still year 0 in UTC), and behind it.
ZONES = ["Pacific/Auckland", "America/New_York"]
NOUN = {"day": "days", "week": "weeks", "month": "months"}


@pytest.fixture(params=ZONES)
def zoned(request, user):
    user.time_zone = request.param
    user.save(update_fields=["time_zone"])
    return user


def cap_message(period: str) -> str:
    return f"at most {MAX_PERIODS} {NOUN[period]} per request"


def today(user) -> dt.date:
    return local_today(tz=user.tzinfo)


def before_today(user, period: str, n: int) -> dt.date:
    """The first day of the period ``n`` periods before this one."""
    return add_periods(period_start(today(user), period), period, -n)


class TestTimeseriesCap:
    """The number of periods is capped whichever of ``from``/``to`` is given."""

    @pytest.mark.parametrize("period", ["day", "week", "month"])
    def test_from_only_over_the_cap_is_400_naming_from(self, api, user, period):
        resp = api.get(TIMESERIES, {"period": period, "from": before_today(user, period, MAX_PERIODS)})
        assert resp.status_code == 400, resp.content[:200]
        assert resp.json() == {"from": [cap_message(period)]}

    @pytest.mark.parametrize("period", ["day", "week", "month"])
    def test_from_only_at_the_cap_is_answered(self, api, user, period):
        counted_session(user, [("squat", 3, 0.0)])
        resp = api.get(TIMESERIES, {"period": period, "from": before_today(user, period, MAX_PERIODS - 1)})
        assert resp.status_code == 200
        body = resp.json()
        assert len(body["results"]) == MAX_PERIODS
        assert body["to"] == today(user).isoformat()
        assert sum(r["reps"] for r in body["results"]) == 3

    @pytest.mark.parametrize("period", ["day", "week", "month"])
    def test_both_over_the_cap_is_400_naming_from(self, api, period):
        end = dt.date(2024, 6, 15)
        start = add_periods(period_start(end, period), period, -MAX_PERIODS)
        resp = api.get(TIMESERIES, {"period": period, "from": start, "to": end})
        assert resp.status_code == 400
        assert resp.json() == {"from": [cap_message(period)]}
        resp = api.get(TIMESERIES, {"period": period, "from": add_periods(start, period, 1), "to": end})
        assert resp.status_code == 200
        assert len(resp.json()["results"]) == MAX_PERIODS

    @pytest.mark.parametrize(("period", "default"), [("day", 30), ("week", 12), ("month", 12)])
    @pytest.mark.parametrize("end", ["2024-06-15", "9999-11-30"])
    def test_to_only_covers_the_default_span(self, api, period, default, end):
        resp = api.get(TIMESERIES, {"period": period, "to": end})
        assert resp.status_code == 200
        body = resp.json()
        assert len(body["results"]) == default
        assert body["to"] == end

    @pytest.mark.parametrize("period", ["day", "week", "month"])
    def test_from_0001_01_02_is_400_not_the_whole_calendar(self, api, zoned, period):
        """The review's request (``from=0001-01-01`` answered 739,952 rows, 30 MB), a day later."""
        resp = api.get(TIMESERIES, {"period": period, "from": "0001-01-02"})
        assert resp.status_code == 400
        assert list(resp.json()) == ["from"]


class TestDateExtremes:
    """A date near the ends of Python's calendar is a 400 naming the parameter, never a 500."""

    @pytest.mark.parametrize(
        ("url", "params", "field"),
        [
            (EXERCISES, {"to": "9999-12-31"}, "to"),
            (EXERCISES, {"from": "0001-01-01"}, "from"),
            (EXERCISES, {"from": "0001-01-01", "to": "9999-12-31"}, "from to"),
            (TIMESERIES, {"period": "day", "to": "9999-12-31"}, "to"),
            (TIMESERIES, {"period": "day", "from": "0001-01-01"}, "from"),
            (TIMESERIES, {"period": "week", "to": "0001-01-02"}, "to"),
            (TIMESERIES, {"period": "day", "to": "0001-01-02"}, "to"),
            (TIMESERIES, {"period": "month", "to": "0001-01-02"}, "to"),
            (TIMESERIES, {"period": "week", "from": "0001-01-02", "to": "0001-01-10"}, "from"),
            (TIMESERIES, {"period": "month", "from": "0001-01-15", "to": "0001-02-10"}, "from"),
            (TIMESERIES, {"period": "week", "from": "9999-12-29", "to": "9999-12-30"}, "to"),
            (TIMESERIES, {"period": "month", "from": "9999-12-01", "to": "9999-12-30"}, "to"),
            (TIMESERIES, {"period": "month", "to": "9999-12-31"}, "to"),
        ],
    )
    def test_is_400_naming_the_parameter(self, api, zoned, url, params, field):
        resp = api.get(url, params)
        assert resp.status_code == 400, resp.content[:200]
        assert sorted(resp.json()) == field.split()

    @pytest.mark.parametrize(
        ("url", "params"),
        [
            (EXERCISES, {"from": "0001-01-02", "to": "9999-12-30"}),
            (TIMESERIES, {"period": "day", "from": "0001-01-02", "to": "0001-01-31"}),
            (TIMESERIES, {"period": "day", "from": "9999-12-01", "to": "9999-12-30"}),
            (TIMESERIES, {"period": "week", "from": "0001-01-08", "to": "0001-03-01"}),
            (TIMESERIES, {"period": "month", "from": "0001-02-01", "to": "0001-12-31"}),
            (TIMESERIES, {"period": "month", "from": "9999-01-01", "to": "9999-11-30"}),
            (TIMESERIES, {"period": "week", "from": "9999-12-01", "to": "9999-12-26"}),
        ],
    )
    def test_the_last_dates_inside_the_bounds_are_answered(self, api, zoned, url, params):
        assert api.get(url, params).status_code == 200

    def test_the_message_names_the_bounds(self, api):
        body = api.get(EXERCISES, {"to": "9999-12-31"}).json()
        assert body == {"to": ["must be from 0001-01-02 to 9999-12-30"]}
