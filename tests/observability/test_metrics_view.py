"""``GET /metrics``: who may scrape it, and what it shows (in-process: the counters a worker
would add are added here through the same store)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from prometheus_client.parser import text_string_to_metric_families

from fitness.observability import catalog, store
from fitness.observability.collector import configured_queues
from fitness.workouts import tasks
from tests.factories import UserFactory, canonical_csv

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(parsed: dict, name: str, **labels) -> float:
    return parsed[(name, tuple(sorted(labels.items())))]


def test_without_configuration_only_loopback_may_scrape(client, settings):
    settings.FITNESS_METRICS_TOKEN = ""
    settings.FITNESS_METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 403


def test_a_token_is_required_when_configured(client, settings):
    settings.FITNESS_METRICS_TOKEN = "s3cret-token"
    settings.FITNESS_METRICS_ALLOWED_NETWORKS = []
    # Loopback alone is not enough once a token is configured.
    refused = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-token").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", REMOTE_ADDR="203.0.113.7")
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain")


def test_an_allow_list_admits_its_networks(client, settings):
    settings.FITNESS_METRICS_TOKEN = ""
    settings.FITNESS_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.post("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 405


def test_stored_counters_and_histograms_are_exported(client, settings):
    settings.FITNESS_METRICS_TOKEN = "t"
    store.record(
        [
            store.Add(catalog.SESSIONS_TOTAL, {"status": "done", "method": "classifier"}),
            store.Add(catalog.SESSIONS_TOTAL, {"status": "done", "method": "classifier"}),
            store.Observe(catalog.COUNTING_SECONDS, {"span": "worker"}, 0.2, catalog.COUNTING_BUCKETS),
            store.Observe(catalog.COUNTING_SECONDS, {"span": "worker"}, 7.0, catalog.COUNTING_BUCKETS),
            store.Add(catalog.WEBHOOK_DELIVERIES_TOTAL, {"outcome": "retried"}),
        ]
    )
    parsed = samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode())
    assert value(parsed, "fitness_sessions_total", status="done", method="classifier") == 2
    assert value(parsed, "fitness_sessions_total", status="failed", method="generic") == 0
    assert value(parsed, "fitness_counting_seconds_count", span="worker") == 2
    assert value(parsed, "fitness_counting_seconds_sum", span="worker") == pytest.approx(7.2)
    # Buckets are cumulative: 0.2 s falls in le=0.25, 7 s in le=10.
    assert value(parsed, "fitness_counting_seconds_bucket", span="worker", le="0.1") == 0
    assert value(parsed, "fitness_counting_seconds_bucket", span="worker", le="0.25") == 1
    assert value(parsed, "fitness_counting_seconds_bucket", span="worker", le="5.0") == 1
    assert value(parsed, "fitness_counting_seconds_bucket", span="worker", le="10.0") == 2
    assert value(parsed, "fitness_counting_seconds_bucket", span="worker", le="+Inf") == 2
    assert value(parsed, "fitness_webhook_deliveries_total", outcome="retried") == 1
    assert value(parsed, "fitness_broker_up") == 1
    for queue in configured_queues():
        assert ("fitness_celery_queue_messages", (("queue", queue),)) in parsed


def test_an_upload_is_counted_with_its_request_and_http_metrics(
    api, client, settings, monkeypatch, django_capture_on_commit_callbacks
):
    queued: list[str] = []
    monkeypatch.setattr(tasks.process_session, "delay", queued.append)
    settings.FITNESS_METRICS_TOKEN = "t"
    upload = {"file": SimpleUploadedFile("r.csv", canonical_csv(), content_type="text/csv"), "format": "csv"}
    with django_capture_on_commit_callbacks(execute=True):
        resp = api.post(
            "/api/v1/sessions/", {**upload, "exercise": "jump_rope"}, format="multipart", HTTP_X_REQUEST_ID="upload-1"
        )
    assert resp.status_code == 202, resp.content
    assert resp["X-Request-ID"] == "upload-1"
    parsed = samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode())
    assert value(parsed, "fitness_sessions_total", status="uploaded", method="none") == 1
    assert value(parsed, "fitness_sessions_pending", status="queued") == 1
    assert value(parsed, "fitness_oldest_queued_session_age_seconds") >= 0
    assert value(parsed, "fitness_http_requests_total", view="session-list", method="POST", status="2xx") >= 1


def test_request_ids_are_validated_or_made_up(api):
    made_up = api.get("/api/v1/sessions/")["X-Request-ID"]
    assert len(made_up) == 32
    assert api.get("/api/v1/sessions/", HTTP_X_REQUEST_ID="a b\nc")["X-Request-ID"] != "a b\nc"
    assert len(api.get("/api/v1/sessions/", HTTP_X_REQUEST_ID="x" * 129)["X-Request-ID"]) == 32
    assert api.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"


def test_every_queue_is_reported_including_new_ones(settings):
    settings.FITNESS_TASK_QUEUES = {**settings.FITNESS_TASK_QUEUES, "webhooks.deliver": "webhooks-test"}
    assert "webhooks-test" in configured_queues()
    assert set(configured_queues()) >= {"counting", "admin"}


def test_no_user_appears_in_labels_and_every_name_is_catalogued(client, settings):
    user = UserFactory(username="label-leak-check")
    client.get("/healthz")  # one request counted, so that the HTTP metrics have a series
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert user.username not in text
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples if s.name.startswith("fitness_")}
    assert names <= catalog.EXPORTED
    # Without a production version: no model info and no live metrics; everything else is there.
    live = {catalog.MODEL_INFO, catalog.LIVE_SETS, catalog.LIVE_EXACT, catalog.LIVE_WITHIN_1, catalog.LIVE_COUNT_MAE}
    assert names == catalog.EXPORTED - live
