"""``/sets/`` and ``/repetitions/``: a ``from``/``to`` near the ends of Python's calendar (after the
time-zone conversion or the day added) is a 400 naming the parameter, never a 500 (found by a
security review: ``OverflowError`` on ``to=9999-12-31``)."""

import datetime as dt

import pytest

from tests.factories import counted_session

pytestmark = pytest.mark.django_db

SETS = "/api/v1/sets/"
REPS = "/api/v1/repetitions/"
#: Ahead of UTC in year 1 and in 9999, and behind it.
ZONES = ["Pacific/Auckland", "America/New_York"]
MESSAGE = "must be from 0001-01-02 to 9999-12-30"
IN_UTC_TOO = MESSAGE + " (in UTC too)"


@pytest.fixture(params=ZONES)
def zoned(request, user):
    user.time_zone = request.param
    user.save(update_fields=["time_zone"])
    counted_session(user, [("squat", 3, 0.0)], at=dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC))
    return user


@pytest.mark.parametrize("url", [SETS, REPS])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "9999-12-31"}, "to"),
        ({"from": "9999-12-31"}, "from"),
        ({"from": "0001-01-01"}, "from"),
        ({"to": "0001-01-01"}, "to"),
        ({"from": "0001-01-01T00:00:00+01:00"}, "from"),
        ({"from": "0001-01-01T00:00:00"}, "from"),
        ({"from": "0001-01-02T05:00:00+14:00"}, "from"),  # 0001-01-01 in UTC
        ({"to": "9999-12-30T20:00:00-05:00"}, "to"),  # 9999-12-31 in UTC
        ({"to": "9999-12-31T23:59:59-23:59"}, "to"),
        ({"to": "9999-12-31T23:59:59Z"}, "to"),
        ({"from": "0001-01-01", "to": "9999-12-31"}, "from"),
    ],
)
def test_dates_at_the_extremes_are_400_naming_the_parameter(api, zoned, url, params, field):
    resp = api.get(url, params)
    assert resp.status_code == 400, resp.content[:200]
    body = resp.json()
    assert field in body
    assert set(body) <= set(params)
    value = params[field]
    has_offset = "T" in value and (value.endswith("Z") or value[-6] in "+-")
    assert body[field] == [IN_UTC_TOO if has_offset else MESSAGE]


@pytest.mark.parametrize("url", [SETS, REPS])
@pytest.mark.parametrize(
    "params",
    [
        {"from": "0001-01-02", "to": "9999-12-30"},
        {"from": "0001-01-02T00:00:00", "to": "9999-12-30T23:59:59"},
        {"from": "0001-01-02T00:00:00Z", "to": "9999-12-30T23:59:59.999999Z"},
        {"from": "0001-01-02T23:00:00+23:00", "to": "9999-12-30T01:00:00-22:00"},
    ],
)
def test_the_widest_range_inside_the_bounds_holds_everything(api, zoned, url, params):
    resp = api.get(url, params)
    assert resp.status_code == 200, resp.content[:200]
    assert len(resp.json()["results"]) == (1 if url == SETS else 3)
