"""The webhooks API: owner-only, the secret shown once, URLs checked, the log and redelivery."""

from __future__ import annotations

import pytest

from fitness.webhooks import services
from fitness.webhooks.models import Delivery, Subscription
from tests.accounts.concurrency import race
from tests.conftest import bearer_client
from tests.factories import SensorSessionFactory, UserFactory
from tests.test_security import assert_throttled, rates  # noqa: F401 - a fixture
from tests.webhooks.conftest import subscribe

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/"


def create(api, url="https://8.8.8.8/hooks", events=("session.done",)):
    return api.post(URL, {"url": url, "events": list(events)}, format="json")


def a_delivery(user, url="https://8.8.8.8/hooks") -> Delivery:
    subscribe(user, url)
    session = SensorSessionFactory(user=user, status="done", total_reps=4)
    (delivery,) = services.deliveries_create(session=session)
    return delivery


class TestCreate:
    def test_the_secret_is_shown_once(self, api, user):
        resp = create(api, events=["session.done", "session.failed"])
        assert resp.status_code == 201, resp.content
        body = resp.json()
        assert set(body) == {"id", "url", "events", "created_at", "secret"}
        assert body["url"] == "https://8.8.8.8/hooks"
        assert body["events"] == ["session.done", "session.failed"]
        secret = body["secret"]
        assert len(secret) == 64
        assert Subscription.objects.get(pk=body["id"]).secret == secret
        for path in (URL, f"{URL}{body['id']}/", f"{URL}{body['id']}/deliveries/"):
            again = api.get(path)
            assert again.status_code == 200
            assert secret not in again.content.decode()
            assert "secret" not in again.content.decode()

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8000/hook",
            "http://10.1.2.3/hook",
            "http://[::1]/hook",
            "http://localhost:8000/hook",
            "http://169.254.169.254/latest/meta-data/",
        ],
    )
    def test_private_and_loopback_urls_are_refused_naming_url(self, api, settings, url):
        settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE = False
        resp = create(api, url=url)
        assert resp.status_code == 400
        assert list(resp.json()) == ["url"]
        assert "webhooks are only sent to public addresses" in resp.json()["url"][0]
        assert not Subscription.objects.exists()

    def test_private_urls_are_accepted_when_the_setting_allows_them(self, api, settings):
        settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE = True
        assert create(api, url="http://127.0.0.1:8000/hook").status_code == 201

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"url": "ftp://8.8.8.8/x", "events": ["session.done"]}, "url"),
            ({"url": "https://user:pw@8.8.8.8/x", "events": ["session.done"]}, "url"),
            ({"url": "http://[::1/x", "events": ["session.done"]}, "url"),
            ({"url": "https://8.8.8.8/x", "events": []}, "events"),
            ({"url": "https://8.8.8.8/x", "events": ["session.started"]}, "events"),
            ({"url": "https://8.8.8.8/x"}, "events"),
            ({"events": ["session.done"]}, "url"),
            ({"url": "https://8.8.8.8/" + "x" * 2100, "events": ["session.done"]}, "url"),
            # Port 0 was accepted and delivered to port 80; none outside 1-65535 is a port.
            ({"url": "http://8.8.8.8:0/x", "events": ["session.done"]}, "url"),
            ({"url": "https://8.8.8.8:00/x", "events": ["session.done"]}, "url"),
            ({"url": "https://8.8.8.8:65536/x", "events": ["session.done"]}, "url"),
            ({"url": "https://8.8.8.8:-1/x", "events": ["session.done"]}, "url"),
        ],
    )
    def test_bad_input_is_a_400_naming_the_field(self, api, body, field):
        resp = api.post(URL, body, format="json")
        assert resp.status_code == 400
        assert field in resp.json()
        assert not Subscription.objects.exists()

    @pytest.mark.parametrize("port", [1, 8443, 65535])
    def test_ports_from_1_to_65535_are_accepted(self, api, port):
        assert create(api, url=f"https://8.8.8.8:{port}/hooks").status_code == 201

    def test_port_0_is_refused_naming_the_port(self, api):
        resp = create(api, url="http://8.8.8.8:0/hook")
        assert resp.json() == {"url": ["the URL's port is not a number from 1 to 65535"]}


class TestReadAndDelete:
    def test_list_is_the_callers_newest_first(self, api, user, other_user):
        first = subscribe(user, "https://8.8.8.8/1")
        second = subscribe(user, "https://8.8.8.8/2")
        subscribe(other_user, "https://8.8.8.8/theirs")
        body = api.get(URL).json()
        assert [s["id"] for s in body["results"]] == [str(second.pk), str(first.pk)]

    def test_delete_removes_the_webhook_and_its_log(self, api, user):
        delivery = a_delivery(user)
        assert api.delete(f"{URL}{delivery.subscription_id}/").status_code == 204
        assert not Subscription.objects.exists()
        assert not Delivery.objects.exists()

    def test_other_users_see_nothing_and_change_nothing(self, other_api, user, queued):
        delivery = a_delivery(user)
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)
        base = f"{URL}{delivery.subscription_id}/"
        assert other_api.get(base).status_code == 404
        assert other_api.get(f"{base}deliveries/").status_code == 404
        assert other_api.post(f"{base}deliveries/{delivery.pk}/redeliver/").status_code == 404
        assert other_api.delete(base).status_code == 404
        assert other_api.get(URL).json()["results"] == []
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.FAILED
        assert Subscription.objects.filter(pk=delivery.subscription_id).exists()
        assert queued == []

    def test_another_webhooks_delivery_cannot_be_redelivered_through_mine(self, api, user, other_user, queued):
        mine = subscribe(user, "https://8.8.8.8/mine")
        theirs = a_delivery(other_user)
        resp = api.post(f"{URL}{mine.pk}/deliveries/{theirs.pk}/redeliver/")
        assert resp.status_code == 404
        assert api.post(f"{URL}{mine.pk}/deliveries/not-a-uuid/redeliver/").status_code == 404
        assert queued == []


class TestDeliveryLog:
    def test_the_log_is_newest_first_with_each_attempt(self, api, user, receiver, eager):
        receiver.answers = [500]
        subscription = subscribe(user, receiver.url)
        older = SensorSessionFactory(user=user, status="done", total_reps=4)
        newer = SensorSessionFactory(user=user, status="failed")
        for session in (older, newer):
            for delivery in services.deliveries_create(session=session):
                services.enqueue_delivery(delivery.pk)
        resp = api.get(f"{URL}{subscription.pk}/deliveries/")
        assert resp.status_code == 200
        body = resp.json()
        assert body["count"] == 2
        failed, done = body["results"]
        assert (failed["event"], failed["session_id"]) == ("session.failed", str(newer.pk))
        assert (done["event"], done["payload"]["total_reps"]) == ("session.done", 4)
        assert done["status"] == "delivered"
        assert [a["status_code"] for a in done["attempts"]] == [500, 200]
        assert set(done["attempts"][0]) == {"attempted_at", "status_code", "error", "duration_ms"}
        assert done["payload"]["delivery_id"] == done["id"]

    def test_the_log_is_paginated(self, api, user, queued):
        subscription = subscribe(user, "https://8.8.8.8/hooks")
        for _ in range(3):
            services.deliveries_create(session=SensorSessionFactory(user=user, status="done", total_reps=1))
        first = api.get(f"{URL}{subscription.pk}/deliveries/?page_size=2").json()
        assert (first["count"], len(first["results"])) == (3, 2)
        assert first["next"]
        assert len(api.get(first["next"]).json()["results"]) == 1

    def test_redeliver_queues_it_again(self, api, user, receiver, eager, django_capture_on_commit_callbacks):
        subscription = subscribe(user, receiver.url)
        (delivery,) = services.deliveries_create(session=SensorSessionFactory(user=user, status="done"))
        services.enqueue_delivery(delivery.pk)
        with django_capture_on_commit_callbacks(execute=True):
            resp = api.post(f"{URL}{subscription.pk}/deliveries/{delivery.pk}/redeliver/")
        assert resp.status_code == 202
        assert resp.json()["id"] == str(delivery.pk)
        assert resp.json()["status"] == "pending"
        assert len(receiver.requests) == 2
        assert receiver.requests[0].body == receiver.requests[1].body
        log = api.get(f"{URL}{subscription.pk}/deliveries/").json()["results"]
        assert [a["status_code"] for a in log[0]["attempts"]] == [200, 200]
        assert log[0]["status"] == "delivered"


class TestRedeliverLimits:
    """One round of attempts per delivery at a time, and a rate per user."""

    def redeliver(self, client, delivery):
        return client.post(f"{URL}{delivery.subscription_id}/deliveries/{delivery.pk}/redeliver/")

    def test_a_pending_delivery_answers_409(self, api, user, queued):
        delivery = a_delivery(user)  # pending: its task is queued
        resp = self.redeliver(api, delivery)
        assert resp.status_code == 409, resp.content
        assert resp.json()["code"] == "delivery_pending"
        assert "already pending" in resp.json()["detail"]
        assert queued == []

    def test_concurrent_redeliveries_queue_it_once(self, transactional_db, queued):
        user = UserFactory()
        delivery = a_delivery(user)
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)
        queued.clear()  # its first round
        clients = [bearer_client(user) for _ in range(6)]
        responses = race([lambda c=c: self.redeliver(c, delivery) for c in clients])
        assert sorted(r.status_code for r in responses) == [202] + [409] * 5, responses
        assert queued == [str(delivery.pk)]

    def test_redeliveries_are_throttled_per_user(self, api, user, other_user, queued, rates):  # noqa: F811
        rates(redeliver="2/hour")
        delivery = a_delivery(user)
        for _ in range(2):
            Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)
            assert self.redeliver(api, delivery).status_code == 202
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)
        assert_throttled(self.redeliver(api, delivery))
        theirs = a_delivery(other_user)
        Delivery.objects.filter(pk=theirs.pk).update(status=Delivery.Status.FAILED)
        assert self.redeliver(bearer_client(other_user), theirs).status_code == 202, "the limit is per user"

    def test_the_schema_documents_the_409(self, api):
        schema = api.get("/api/schema/?format=json").json()
        operation = schema["paths"]["/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver/"]["post"]
        assert "409" in operation["responses"]
        assert "pending" in operation["responses"]["409"]["description"]
        assert "429" in operation["responses"]
