"""The app's wiring: the task is found by autodiscovery, the admin renders, an account's
deletion takes its webhooks along."""

import pytest

from fitness.webhooks import services
from fitness.webhooks.models import Delivery, DeliveryAttempt, Subscription
from tests.factories import PASSWORD, SensorSessionFactory
from tests.webhooks.conftest import subscribe


def test_the_delivery_task_is_found_by_autodiscovery():
    from workers.celery import app

    app.loader.import_default_modules()
    assert "webhooks.deliver" in app.tasks


@pytest.mark.django_db
def test_the_admin_pages_render_without_the_secret(admin_client, user, queued):
    subscription = subscribe(user, "https://8.8.8.8/hook")
    (delivery,) = services.deliveries_create(session=SensorSessionFactory(user=user, status="done", total_reps=2))
    for url in (
        "/admin/webhooks/subscription/",
        f"/admin/webhooks/subscription/{subscription.pk}/change/",
        "/admin/webhooks/delivery/",
        f"/admin/webhooks/delivery/{delivery.pk}/change/",
    ):
        resp = admin_client.get(url)
        assert resp.status_code == 200, url
        assert subscription.secret not in resp.content.decode()


@pytest.mark.django_db
def test_deleting_the_account_removes_its_webhooks_and_their_log(api, user, other_user, receiver, eager):
    subscription = subscribe(user, receiver.url)
    theirs = subscribe(other_user, receiver.url)
    services.deliveries_create(session=SensorSessionFactory(user=user, status="done", total_reps=2))
    for delivery in Delivery.objects.all():
        services.enqueue_delivery(delivery.pk)
    assert DeliveryAttempt.objects.exists()
    resp = api.delete("/api/v1/account/", {"password": PASSWORD}, format="json")
    assert resp.status_code == 204, resp.content
    assert list(Subscription.objects.all()) == [theirs]
    assert not Delivery.objects.filter(subscription_id=subscription.pk).exists()
    assert not DeliveryAttempt.objects.exists()
