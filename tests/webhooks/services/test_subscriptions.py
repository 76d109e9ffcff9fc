import re

import pytest

from fitness.webhooks import services
from fitness.webhooks.models import Subscription
from tests.accounts.concurrency import race
from tests.factories import UserFactory


@pytest.mark.django_db
def test_a_subscription_gets_its_own_random_secret(user):
    first = services.subscription_create(user=user, url="https://8.8.8.8/a", events=["session.done"])
    second = services.subscription_create(user=user, url="https://8.8.8.8/b", events=["session.done"])
    assert re.fullmatch(r"[0-9a-f]{64}", first.secret)
    assert first.secret != second.secret


@pytest.mark.django_db
def test_events_are_kept_once_each_in_order(user):
    events = ["session.failed", "session.done", "session.failed"]
    subscription = services.subscription_create(user=user, url="https://8.8.8.8/a", events=events)
    assert subscription.events == ["session.failed", "session.done"]


@pytest.mark.django_db
@pytest.mark.parametrize("events", [[], ["session.started"], ["session.done", "nope"]])
def test_unknown_or_no_events_are_refused(user, events):
    with pytest.raises(services.SubscriptionError) as exc:
        services.subscription_create(user=user, url="https://8.8.8.8/a", events=events)
    assert exc.value.field == "events"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hook", "http://localhost/hook", "http://[::1]/hook"])
def test_private_urls_are_refused_unless_allowed(user, settings, url):
    settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(services.SubscriptionError) as exc:
        services.subscription_create(user=user, url=url, events=["session.done"])
    assert exc.value.field == "url"
    assert "loopback address" in exc.value.message
    assert not Subscription.objects.exists()

    settings.FITNESS_WEBHOOKS_ALLOW_PRIVATE = True
    assert services.subscription_create(user=user, url=url, events=["session.done"]).url == url


@pytest.mark.django_db
def test_a_user_has_at_most_the_configured_number(user, other_user, settings):
    settings.FITNESS_WEBHOOKS_MAX_PER_USER = 2
    for i in range(2):
        services.subscription_create(user=user, url=f"https://8.8.8.8/{i}", events=["session.done"])
    with pytest.raises(services.SubscriptionError) as exc:
        services.subscription_create(user=user, url="https://8.8.8.8/3", events=["session.done"])
    assert "at most 2" in exc.value.message
    services.subscription_create(user=other_user, url="https://8.8.8.8/3", events=["session.done"])


@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_under_concurrent_creations(settings):
    """30 creations at once (threads, each with its own connection) make exactly the limit."""
    settings.FITNESS_WEBHOOKS_MAX_PER_USER = 10
    user = UserFactory()

    def create(i: int):
        return services.subscription_create(user=user, url=f"https://8.8.8.8/{i}", events=["session.done"])

    results = race([lambda i=i: create(i) for i in range(30)])
    made = [r for r in results if isinstance(r, Subscription)]
    refused = [r for r in results if isinstance(r, services.SubscriptionError)]
    assert len(made) == 10, results
    assert len(refused) == 20, [r for r in results if not isinstance(r, Subscription | services.SubscriptionError)]
    assert Subscription.objects.filter(user=user).count() == 10
