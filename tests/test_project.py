"""Project-level checks: OpenAPI schema, health, admin, migrations."""

import pytest
from django.core.management import call_command

from tests.factories import SensorSessionFactory, WorkoutFactory


def test_openapi_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/sessions/", "/api/v1/sessions/{id}/", "/api/v1/workouts/", "/api/v1/stats/exercises/"):
        assert f"  {path}:" in text
    assert "jwtAuth" in text


@pytest.mark.django_db
def test_schema_and_docs_are_served(anon_client):
    assert anon_client.get("/api/schema/").status_code == 200
    assert anon_client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


@pytest.mark.django_db
def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/user/",
        "/admin/workouts/workout/",
        "/admin/workouts/sensorsession/",
        "/admin/workouts/exerciseset/",
    ],
)
def test_admin_pages_render(admin_client, url):
    SensorSessionFactory(workout=WorkoutFactory())
    assert admin_client.get(url).status_code == 200
