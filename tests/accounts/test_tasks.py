"""The daily token flush: expired refresh tokens leave simplejwt's tables, live ones stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from fitness.accounts.tasks import flush_expired_tokens
from workers.celery import app


@pytest.mark.django_db
def test_expired_tokens_are_flushed_and_live_ones_kept(user):
    expired, live, live_revoked = (RefreshToken.for_user(user) for _ in range(3))
    expired.blacklist()
    live_revoked.blacklist()
    OutstandingToken.objects.filter(jti=expired["jti"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    flush_expired_tokens.apply().get()

    assert set(OutstandingToken.objects.values_list("jti", flat=True)) == {live["jti"], live_revoked["jti"]}
    assert list(BlacklistedToken.objects.values_list("token__jti", flat=True)) == [live_revoked["jti"]]


def test_beat_runs_the_flush_daily_on_the_admin_queue():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == flush_expired_tokens.name]
    assert [e["schedule"] for e in entries] == [24 * 3600.0]
    assert app.amqp.router.route({}, flush_expired_tokens.name)["queue"].name == settings.CELERY_ADMIN_QUEUE
