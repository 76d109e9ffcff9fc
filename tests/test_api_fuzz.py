"""API fuzzing: Schemathesis generates requests from the project's own OpenAPI schema
(valid and invalid data, a bounded number per operation) and sends them in-process to
the WSGI app as a logged-in staff user. No answer may be a server error, and every
answer must match the schema: documented status code, content type and body.

Date-like query parameters (``format: date``/``date-time``, and the history filters'
``from``/``to``) are also drawn at the edges of what Python's ``datetime`` holds
(0001-01-01, 9999-12-31, with and without UTC offsets) and from anywhere in between (long
spans): the class of input that once overflowed into a 500 or an unbounded answer. The
staff user lives in Auckland (ahead of UTC in year 1 and in 9999), so local midnights
move across the limits too; and no answer may be larger than ``MAX_ANSWER_BYTES``.

Left out: uploading model files (each would load TensorFlow) and deleting the account
(every later request would be anonymous).
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import strategies as st
from schemathesis import Config
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fitness.workouts import tasks
from tests.conftest import bearer_client
from tests.factories import UserFactory, WorkoutFactory, counted_session

#: Generated cases per operation and mode; a longer or different run: FUZZ_MAX_EXAMPLES, FUZZ_SEED.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "8"))
#: Operations with date-like query parameters get more (their edges are narrow):
#: ``test_operations_with_dates_get_more_examples`` keeps this list complete.
DATE_OPERATIONS = (
    "/api/v1/sets/",
    "/api/v1/repetitions/",
    "/api/v1/sets/changes/",
    "/api/v1/repetitions/changes/",
    "/api/v1/stats/exercises/",
    "/api/v1/stats/timeseries/",
)
DATE_EXAMPLES = 4 * MAX_EXAMPLES
#: No answer to the staff user's few rows may be larger (a time series of every day since year 1 was 30 MB).
MAX_ANSWER_BYTES = 1024 * 1024


@schemathesis.check
def bounded_answer(ctx, response, case) -> None:
    """The answer is at most ``MAX_ANSWER_BYTES`` long."""
    size = len(response.content or b"")
    if size > MAX_ANSWER_BYTES:
        raise AssertionError(f"the answer is {size} bytes long (at most {MAX_ANSWER_BYTES})")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    bounded_answer,
]


def load_schema():
    from fitness.wsgi import application

    config = Config.from_dict(
        {
            "seed": int(os.environ.get("FUZZ_SEED", "20261121")),
            "generation": {"max-examples": MAX_EXAMPLES, "mode": "all"},
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "suppress-health-check": ["all"],
            "operations": [{"include-path": list(DATE_OPERATIONS), "generation": {"max-examples": DATE_EXAMPLES}}],
        }
    )
    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=config)
    return loaded.exclude(method="POST", path="/api/v1/model-versions/").exclude(
        method="DELETE", path="/api/v1/account/"
    )


schema = load_schema()

# --- Dates at the edges of the calendar ------------------------------------------------

#: Query parameters read as a date or date-time besides those of ``format: date``/``date-time``.
DATE_PARAMETER_NAMES = frozenset({"from", "to", "since", "until", "updated_since", "before", "after"})
_FIRST, _LAST, _DAY = dt.date.min, dt.date.max, dt.timedelta(days=1)
_EDGE = 45 * _DAY
#: The first and last days, days near either end of the calendar, and days anywhere (long spans).
extreme_dates = st.one_of(
    st.sampled_from([_FIRST, _FIRST + _DAY, _LAST - _DAY, _LAST]),
    st.dates(_FIRST, _FIRST + _EDGE),
    st.dates(_LAST - _EDGE, _LAST),
    st.dates(_FIRST, _LAST),
).map(dt.date.isoformat)
#: Local time (no offset), UTC and offsets up to a minute short of a day either way.
_OFFSETS = st.sampled_from(["", "Z", "+00:00", "+01:00", "+14:00", "-01:00", "-12:00", "+23:59", "-23:59"])
extreme_datetimes = st.builds(
    lambda day, at, offset: f"{day}T{at.isoformat(timespec='seconds')}{offset}", extreme_dates, st.times(), _OFFSETS
)


def date_like_strategy(parameter) -> st.SearchStrategy[str] | None:
    """Extreme values for a date-like query parameter (None: the parameter is not one)."""
    fmt = parameter.definition.get("schema", {}).get("format")
    if fmt == "date":
        return extreme_dates
    if fmt == "date-time":
        return extreme_datetimes
    if parameter.name in DATE_PARAMETER_NAMES:
        return st.one_of(extreme_dates, extreme_datetimes)
    return None


def date_like_parameters(operation) -> dict[str, st.SearchStrategy[str]]:
    out = {}
    for parameter in operation.query:
        strategy = date_like_strategy(parameter)
        if strategy is not None:
            out[parameter.name] = strategy
    return out


@schema.hook
def flatmap_query(context, query):
    """Each generated query with some of its date-like parameters (none to all) at the extremes."""
    extremes = date_like_parameters(context.operation) if context.operation else {}
    if not extremes or not isinstance(query, dict | None):
        return st.just(query)
    return st.fixed_dictionaries({}, optional=extremes).map(lambda values: {**(query or {}), **values})


def test_operations_with_dates_get_more_examples():
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations if date_like_parameters(op)} == set(DATE_OPERATIONS)


@pytest.fixture(autouse=True)
def keep_db_connection():
    """As Django's test client does: the WSGI app must not close the test's database connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def quiet(settings, monkeypatch):
    """Fuzzing is about answers, not rate limits; tasks are not published in a test transaction anyway."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
    monkeypatch.setattr(tasks.process_session, "delay", lambda session_id: None)


@pytest.fixture
def staff_token(db) -> str:
    staff = UserFactory(is_staff=True, time_zone="Pacific/Auckland")  # ahead of UTC from year 1 to 9999
    counted_session(staff, [("squat", 3, 0.0), ("jump_rope", 10, 20.0)])
    WorkoutFactory(user=staff)
    client = bearer_client(staff)
    return client._credentials["HTTP_AUTHORIZATION"]


@schema.parametrize()
def test_no_server_errors_and_no_schema_violations(case, staff_token):
    case.call_and_validate(headers={"Authorization": staff_token}, checks=CHECKS)
