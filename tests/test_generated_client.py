"""A Python client generated from the project's OpenAPI schema by openapi-python-client, the usual
first try of an app developer: every module imports, and the README's flow runs through it on
parsed answers (typed models, no raw JSON) against a live server and a real Celery worker."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.fixtures.celery_worker import COUNT_TIMEOUT_S, running_worker

REPO = Path(__file__).resolve().parents[1]
EXERMOTE = (REPO / "../shared/data/exermote").resolve()
RECORDING = EXERMOTE / "2017-03-30_18-50-49_individual-1.csv"
PACKAGE = "fitness_client"
# The generator's own formatting hooks (ruff) are left out: the client is imported, not read.
CONFIG = {"post_hooks": [], "content_type_overrides": {"image/png": "application/octet-stream"}}


def schema_document() -> dict:
    """The schema /api/schema/ serves (same generator, public view)."""
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture(scope="module")
def client_package(tmp_path_factory):
    """Generate the client into a temporary folder and import it; yields the package module."""
    root = tmp_path_factory.mktemp("generated")
    (root / "schema.json").write_text(json.dumps(schema_document()))
    (root / "config.json").write_text(json.dumps(CONFIG))
    exe = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run(
        [str(exe), "generate", "--path", str(root / "schema.json"), "--output-path", str(root / PACKAGE),
         "--meta", "none", "--config", str(root / "config.json")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # Anything it could not generate is named in a warning: the schema must not need one.
    assert "Warning" not in result.stdout, result.stdout
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_every_request_body_has_one_content_type_json_except_file_uploads():
    schema = schema_document()
    seen = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if body := operation.get("requestBody"):
                seen[f"{method.upper()} {path}"] = list(body["content"])
    assert seen, "the schema has request bodies"
    uploads = {"POST /api/v1/sessions/", "POST /api/v1/model-versions/"}
    for operation, types in seen.items():
        expected = ["multipart/form-data"] if operation in uploads else ["application/json"]
        assert types == expected, operation


def test_every_2xx_answer_with_a_body_has_its_schema():
    """A 2xx without content in the schema must be a 204: any other answer sends a body, and a
    generated client would return None for it (the token pair did)."""
    schema = schema_document()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code, answer in operation["responses"].items():
                if not code.startswith("2"):
                    continue
                if code == "204":
                    assert "content" not in answer, f"{method.upper()} {path} {code}"
                    continue
                content = answer.get("content")
                assert content, f"{method.upper()} {path} answers {code} without a schema"
                for media_type, body in content.items():
                    assert body.get("schema"), f"{method.upper()} {path} {code} {media_type}"


def test_token_answers_are_documented_as_the_pair():
    schema = schema_document()
    for path in ("/api/v1/auth/token/", "/api/v1/auth/token/refresh/"):
        ref = schema["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert set(component["required"]) >= {"access", "refresh"}, path


def test_every_generated_module_imports(client_package):
    names = [m.name for m in pkgutil.walk_packages(client_package.__path__, f"{PACKAGE}.")]
    assert any(".api." in name for name in names)
    assert any(".models." in name for name in names)
    failures = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failures[name] = repr(exc)
    assert not failures, failures


@pytest.mark.e2e
@pytest.mark.skipif(not RECORDING.is_file(), reason=f"no Exermote recording at {RECORDING} (shared data absent)")
def test_readme_flow_through_the_generated_client(client_package, live_server, settings, tmp_path, monkeypatch):
    settings.FITNESS_SYNC_LAG_S = 0.0  # the sync window reaches now: the correction is in it
    api = importlib.import_module(f"{PACKAGE}.api")
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    mod = {name: importlib.import_module(f"{PACKAGE}.api.{name}") for name in ("auth", "sessions", "corrections")}
    auth, sessions, corrections = mod["auth"], mod["sessions"], mod["corrections"]
    history = importlib.import_module(f"{PACKAGE}.api.history")
    stats = importlib.import_module(f"{PACKAGE}.api.stats")
    exercises = importlib.import_module(f"{PACKAGE}.api.exercises")
    assert api

    def op(package, name):
        return importlib.import_module(f"{package.__name__}.{name}")

    anonymous = client_package.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    password = "correct-horse-battery-9"
    registered = op(auth, "auth_register_create").sync(
        client=anonymous, body=models.RegisterRequest(username="ada", password=password)
    )
    assert isinstance(registered, models.User)
    assert registered.username == "ada"
    pair = op(auth, "auth_token_create").sync(
        client=anonymous, body=models.TokenObtainPairRequest(username="ada", password=password)
    )
    assert isinstance(pair, models.TokenPair)
    assert pair.access
    assert pair.refresh
    client = client_package.AuthenticatedClient(
        base_url=live_server.url, token=pair.access, raise_on_unexpected_status=True
    )

    with running_worker(settings=settings, tmp_path=tmp_path, monkeypatch=monkeypatch, prefix="client") as worker:
        started_at = datetime(2017, 3, 30, 16, 50, 49, tzinfo=UTC)
        client_id = uuid.uuid4()
        body = models.SessionUploadRequest(
            file=types.File(payload=RECORDING.open("rb"), file_name=RECORDING.name, mime_type="text/csv"),
            format_=models.FormatEnum.EXERMOTE,
            started_at=started_at,
            client_id=client_id,
        )
        uploaded = op(sessions, "sessions_create").sync_detailed(client=client, body=body)
        assert uploaded.status_code == 202
        assert isinstance(uploaded.parsed, models.Session)
        assert uploaded.parsed.status == models.StatusEnum.QUEUED
        assert uploaded.parsed.client_id == client_id

        deadline = time.monotonic() + COUNT_TIMEOUT_S
        while True:
            session = op(sessions, "sessions_retrieve").sync(id=uploaded.parsed.id, client=client)
            if session.status in (models.StatusEnum.DONE, models.StatusEnum.FAILED):
                break
            assert worker.poll() is None, worker.log_text()[-4000:]
            assert time.monotonic() < deadline, worker.log_text()[-4000:]
            time.sleep(0.5)
    assert session.status == models.StatusEnum.DONE, session.error
    assert session.started_at == started_at
    assert session.sets
    assert session.total_reps == sum(s.reps for s in session.sets)

    first = session.sets[0]
    corrected = op(corrections, "sets_partial_update").sync(
        id=first.id, client=client, body=models.PatchedSetCorrectionRequest(reps=first.reps + 1)
    )
    assert isinstance(corrected, models.SetHistory)
    assert corrected.reps == first.reps + 1
    assert corrected.counted_reps == first.reps
    assert corrected.corrected

    changes = op(history, "sets_changes_retrieve").sync(client=client)
    assert isinstance(changes, models.SetSyncPage)
    synced = {row.id: row for row in changes.results if isinstance(row, models.SetHistory)}
    assert synced[first.id].reps == first.reps + 1

    per_exercise = op(stats, "stats_exercises_list").sync(client=client)
    totals = {row.exercise: row.total_reps for row in per_exercise}
    assert sum(totals.values()) == session.total_reps + 1

    catalog = op(exercises, "exercises_list").sync(client=client)
    ids = [item.id for item in catalog]
    assert ids[0] == "unknown"
    assert {s.exercise for s in session.sets} <= set(ids)
