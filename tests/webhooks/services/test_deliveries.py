"""Deliveries to a real HTTP receiver on 127.0.0.1, run eagerly (retries included)."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

from fitness.webhooks import services, tasks
from fitness.webhooks.models import Delivery
from tests.factories import SensorSessionFactory
from tests.webhooks.conftest import running_dribbler, running_receiver, subscribe
from tests.webhooks.test_addresses import fake_dns

pytestmark = pytest.mark.django_db


def finished_session(user, status="done", total_reps=7):
    return SensorSessionFactory(user=user, status=status, total_reps=total_reps, finished_at=timezone.now())


def one_delivery(user, url, *, status="done") -> Delivery:
    """A subscription of ``user`` to ``url`` and the delivery of one finished session (not queued)."""
    subscribe(user, url)
    (delivery,) = services.deliveries_create(session=finished_session(user, status=status))
    return delivery


def attempts_of(delivery: Delivery) -> list[tuple[int | None, str]]:
    return list(delivery.attempts.order_by("attempted_at", "pk").values_list("status_code", "error"))


class TestDeliveriesCreate:
    def test_one_per_subscription_to_the_event_queued_after_commit(
        self, user, other_user, queued, django_capture_on_commit_callbacks
    ):
        done_only = subscribe(user, "https://8.8.8.8/done", events=["session.done"])
        subscribe(user, "https://8.8.8.8/failed", events=["session.failed"])
        both = subscribe(user, "https://8.8.8.8/both")
        subscribe(other_user, "https://8.8.8.8/theirs")
        session = finished_session(user, total_reps=12)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            deliveries = services.deliveries_create(session=session)
        assert queued == []
        assert {d.subscription_id for d in deliveries} == {done_only.pk, both.pk}
        for callback in callbacks:
            callback()
        assert sorted(queued) == sorted(str(d.pk) for d in deliveries)
        delivery = Delivery.objects.get(subscription=both)
        assert delivery.status == Delivery.Status.PENDING
        assert delivery.payload == {
            "event": "session.done",
            "session_id": str(session.pk),
            "status": "done",
            "total_reps": 12,
            "occurred_at": session.finished_at.isoformat().replace("+00:00", "Z"),
            "delivery_id": str(delivery.pk),
        }

    def test_a_failed_session_sends_session_failed_without_reps(self, user, queued):
        subscribe(user, "https://8.8.8.8/done", events=["session.done"])
        failed_only = subscribe(user, "https://8.8.8.8/failed", events=["session.failed"])
        (delivery,) = services.deliveries_create(session=finished_session(user, status="failed", total_reps=None))
        assert delivery.subscription_id == failed_only.pk
        assert (delivery.payload["event"], delivery.payload["status"], delivery.payload["total_reps"]) == (
            "session.failed",
            "failed",
            None,
        )

    @pytest.mark.parametrize("status", ["queued", "processing"])
    def test_a_session_that_did_not_end_sends_nothing(self, user, queued, status):
        subscribe(user, "https://8.8.8.8/both")
        assert services.deliveries_create(session=finished_session(user, status=status)) == []
        assert not Delivery.objects.exists()

    def test_a_broker_outage_leaves_the_delivery_pending(self, user, monkeypatch, django_capture_on_commit_callbacks):
        def broker_down(delivery_id):
            raise ConnectionRefusedError("broker down")

        monkeypatch.setattr(tasks.deliver, "delay", broker_down)
        subscribe(user, "https://8.8.8.8/both")
        with django_capture_on_commit_callbacks(execute=True):
            (delivery,) = services.deliveries_create(session=finished_session(user))
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.PENDING


class TestDeliveryAttempt:
    def test_the_signature_verifies_against_the_raw_body(self, user, receiver):
        delivery = one_delivery(user, receiver.url)
        outcome = services.delivery_attempt(delivery_id=delivery.pk, last=False)
        assert outcome.delivered
        (request,) = receiver.requests
        secret = delivery.subscription.secret.encode()
        expected = "sha256=" + hmac.new(secret, request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-Signature-256"], expected)
        assert not hmac.compare_digest(
            request.headers["X-Signature-256"],
            "sha256=" + hmac.new(b"another secret", request.body, hashlib.sha256).hexdigest(),
        )
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Webhook-Event"] == "session.done"
        assert request.headers["X-Webhook-Delivery"] == str(delivery.pk)
        assert request.path == "/hooks/fitness?source=test"
        assert json.loads(request.body) == delivery.payload
        assert set(json.loads(request.body)) == {
            "event",
            "session_id",
            "status",
            "total_reps",
            "occurred_at",
            "delivery_id",
        }
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.DELIVERED
        ((code, error),) = attempts_of(delivery)
        assert (code, error) == (200, "")

    def test_a_500_is_retried_and_the_log_shows_both_attempts(self, user, receiver, eager):
        receiver.answers = [500]
        delivery = one_delivery(user, receiver.url)
        tasks.deliver.delay(str(delivery.pk))
        assert len(receiver.requests) == 2
        assert receiver.requests[0].body == receiver.requests[1].body  # the same event, the same signature
        assert receiver.requests[0].headers["X-Signature-256"] == receiver.requests[1].headers["X-Signature-256"]
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.DELIVERED
        assert attempts_of(delivery) == [(500, ""), (200, "")]
        attempt = delivery.attempts.order_by("attempted_at").first()
        assert attempt.duration_ms >= 0

    def test_it_gives_up_after_the_last_attempt(self, user, receiver, eager, settings):
        settings.FITNESS_WEBHOOKS_MAX_ATTEMPTS = 3
        receiver.answers = [500, 503, 404, 200]
        delivery = one_delivery(user, receiver.url)
        tasks.deliver.delay(str(delivery.pk))
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.FAILED
        assert attempts_of(delivery) == [(500, ""), (503, ""), (404, "")]
        assert len(receiver.requests) == 3

    def test_an_endpoint_that_is_down_is_retried_and_logged(self, user, down_url, eager, settings):
        settings.FITNESS_WEBHOOKS_MAX_ATTEMPTS = 2
        delivery = one_delivery(user, down_url)
        tasks.deliver.delay(str(delivery.pk))
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.FAILED
        log = attempts_of(delivery)
        assert len(log) == 2
        assert all(code is None and error.startswith("cannot connect") for code, error in log)

    def test_a_slow_endpoint_times_out(self, user, receiver, eager, settings):
        settings.FITNESS_WEBHOOKS_MAX_ATTEMPTS = 2
        settings.FITNESS_WEBHOOKS_TIMEOUT_S = 0.3
        receiver.delay_s = 1.0
        delivery = one_delivery(user, receiver.url)
        tasks.deliver.delay(str(delivery.pk))
        log = attempts_of(delivery)
        assert log == [(None, "timed out waiting for the answer")] * 2
        assert all(a.duration_ms < 900 for a in delivery.attempts.all())

    def test_a_dribbling_receiver_is_cut_at_the_attempt_deadline(self, user, allow_private, settings, queued):
        """Each byte of the status line comes well inside the read timeout; the attempt as a whole
        still ends at its deadline, logged as a timeout and left to the retries."""
        settings.FITNESS_WEBHOOKS_TIMEOUT_S = 2.0
        settings.FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S = 1.5
        with running_dribbler(interval_s=0.3) as dribbler:
            delivery = one_delivery(user, dribbler.url)
            started = time.monotonic()
            outcome = services.delivery_attempt(delivery_id=delivery.pk, last=False)
            elapsed = time.monotonic() - started
        assert dribbler.connections == 1
        assert not outcome.delivered
        assert outcome.retryable
        assert attempts_of(delivery) == [(None, "timed out: no complete answer within the 1.5 s deadline")]
        assert 1.4 < elapsed < 2.5, elapsed
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.PENDING  # the task retries it

    def test_redirects_are_not_followed(self, user, receiver, eager, settings):
        settings.FITNESS_WEBHOOKS_MAX_ATTEMPTS = 1
        with running_receiver() as elsewhere:
            receiver.answers = [307]
            receiver.redirect_to = elsewhere.url
            delivery = one_delivery(user, receiver.url)
            tasks.deliver.delay(str(delivery.pk))
            assert elsewhere.requests == []
        assert attempts_of(delivery) == [(307, "")]

    def test_the_address_is_checked_again_at_delivery_time(self, user, receiver, eager, settings, monkeypatch):
        """DNS rebinding: the name was public when subscribed, points inside now: refused, not retried."""
        settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE = False
        port = receiver.url.split(":")[2].split("/")[0]
        fake_dns(monkeypatch, {"hooks.example.com": ["127.0.0.1"]})
        delivery = one_delivery(user, f"http://hooks.example.com:{port}/hook")
        tasks.deliver.delay(str(delivery.pk))
        assert receiver.requests == []
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.FAILED
        ((code, error),) = attempts_of(delivery)
        assert code is None
        assert error.startswith("refused: 'hooks.example.com' resolves to a loopback address")

    def test_it_connects_to_the_checked_address_with_the_host_header_of_the_url(
        self, user, receiver, monkeypatch, queued
    ):
        port = receiver.url.split(":")[2].split("/")[0]
        fake_dns(monkeypatch, {"receiver.test": ["127.0.0.1"]})
        delivery = one_delivery(user, f"http://receiver.test:{port}/in")
        assert services.delivery_attempt(delivery_id=delivery.pk, last=True).delivered
        (request,) = receiver.requests
        assert request.headers["Host"] == f"receiver.test:{port}"
        assert request.path == "/in"

    def test_https_certificates_are_verified(self, user, allow_private, tmp_path, queued):
        """A self-signed certificate is an error of the attempt, not a delivery."""
        if shutil.which("openssl") is None:
            pytest.skip("openssl is not installed")
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                seen.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            delivery = one_delivery(user, f"https://127.0.0.1:{server.server_port}/hook")
            outcome = services.delivery_attempt(delivery_id=delivery.pk, last=True)
        finally:
            server.shutdown()
            server.server_close()
        assert not outcome.delivered
        ((code, error),) = attempts_of(delivery)
        assert code is None
        assert error.startswith("TLS error")
        assert "CERTIFICATE_VERIFY_FAILED" in error
        assert seen == []

    def test_a_deleted_subscription_sends_nothing(self, user, receiver):
        delivery = one_delivery(user, receiver.url)
        services.subscription_delete(subscription=delivery.subscription)
        assert services.delivery_attempt(delivery_id=delivery.pk, last=False) is None
        assert tasks.deliver.apply(args=[str(delivery.pk)]).get() is None
        assert receiver.requests == []

    def test_an_unknown_delivery_is_nothing_to_do(self):
        assert services.delivery_attempt(delivery_id=uuid.uuid4(), last=False) is None


class TestRedeliver:
    def test_a_pending_delivery_is_not_queued_twice(self, user, queued, django_capture_on_commit_callbacks):
        delivery = one_delivery(user, "https://8.8.8.8/hook")
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(services.DeliveryPendingError):
            services.delivery_redeliver(delivery=delivery)
        assert queued == []
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)
        with django_capture_on_commit_callbacks(execute=True):
            services.delivery_redeliver(delivery=delivery)
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(services.DeliveryPendingError):
            services.delivery_redeliver(delivery=delivery)
        assert queued == [str(delivery.pk)]

    def test_a_pending_delivery_that_lost_its_task_can_be_redelivered(
        self, user, queued, django_capture_on_commit_callbacks
    ):
        """Pending and quiet for longer than any retry waits (a broker outage when it was made)."""
        delivery = one_delivery(user, "https://8.8.8.8/hook")
        quiet = timezone.now() - timezone.timedelta(seconds=services.deliveries.pending_stale_after_s() + 1)
        Delivery.objects.filter(pk=delivery.pk).update(updated_at=quiet)
        with django_capture_on_commit_callbacks(execute=True):
            services.delivery_redeliver(delivery=delivery)
        assert queued == [str(delivery.pk)]

    def test_redelivery_sends_the_same_event_again(self, user, receiver, eager, django_capture_on_commit_callbacks):
        delivery = one_delivery(user, receiver.url)
        tasks.deliver.delay(str(delivery.pk))
        with django_capture_on_commit_callbacks(execute=True):
            services.delivery_redeliver(delivery=delivery)
        assert eager == [str(delivery.pk)] * 2
        first, again = receiver.requests
        assert again.body == first.body
        assert json.loads(again.body)["delivery_id"] == str(delivery.pk)
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.DELIVERED
        assert attempts_of(delivery) == [(200, ""), (200, "")]

    def test_a_failed_delivery_gets_a_new_round_of_attempts(
        self, user, receiver, eager, settings, django_capture_on_commit_callbacks
    ):
        settings.FITNESS_WEBHOOKS_MAX_ATTEMPTS = 2
        receiver.answers = [500, 500, 500]
        delivery = one_delivery(user, receiver.url)
        tasks.deliver.delay(str(delivery.pk))
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.FAILED
        with django_capture_on_commit_callbacks(execute=True):
            services.delivery_redeliver(delivery=delivery)
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.DELIVERED
        assert attempts_of(delivery) == [(500, ""), (500, ""), (500, ""), (200, "")]


def test_the_retry_countdown_doubles_up_to_the_ceiling(settings):
    settings.FITNESS_WEBHOOKS_RETRY_BACKOFF_S = 10.0
    settings.FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S = 60.0
    assert [tasks.retry_countdown(n) for n in range(5)] == [10.0, 20.0, 40.0, 60.0, 60.0]


def test_a_retry_that_cannot_be_queued_fails_the_delivery(user, receiver, monkeypatch):
    receiver.answers = [500]
    delivery = one_delivery(user, receiver.url)

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.deliver, "retry", broker_down)
    assert tasks.deliver.apply(args=[str(delivery.pk)]).get() == "failed"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
