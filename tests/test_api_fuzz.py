"""API fuzzing: Schemathesis generates requests from the project's own OpenAPI schema
(valid and invalid data, a bounded number per operation) and sends them in-process to
the WSGI app as a logged-in staff user. No answer may be a server error, and every
answer must match the schema: documented status code, content type and body.

Left out: uploading model files (each would load TensorFlow) and deleting the account
(every later request would be anonymous).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
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
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def load_schema():
    from fitness.wsgi import application

    config = Config.from_dict(
        {
            "seed": int(os.environ.get("FUZZ_SEED", "20261121")),
            "generation": {"max-examples": MAX_EXAMPLES, "mode": "all"},
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "suppress-health-check": ["all"],
        }
    )
    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=config)
    return loaded.exclude(method="POST", path="/api/v1/model-versions/").exclude(
        method="DELETE", path="/api/v1/account/"
    )


schema = load_schema()


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
    staff = UserFactory(is_staff=True)
    counted_session(staff, [("squat", 3, 0.0), ("jump_rope", 10, 20.0)])
    WorkoutFactory(user=staff)
    client = bearer_client(staff)
    return client._credentials["HTTP_AUTHORIZATION"]


@schema.parametrize()
def test_no_server_errors_and_no_schema_violations(case, staff_token):
    case.call_and_validate(headers={"Authorization": staff_token}, checks=CHECKS)
