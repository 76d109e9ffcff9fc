"""Lockout after repeated failed logins (django-axes, configured in settings.py): the client
address it counts by, what it locks, the API's answer to a locked-out login, and forgetting an
account's failures once it logs in.

What is locked: the pair (account, address) after ``AXES_FAILURE_LIMIT`` failures, so that a
stranger guessing passwords locks neither the account's owner on another address nor the other
users of a shared address (a gym, an office, carrier NAT); and the address alone after
``FITNESS_LOGIN_ADDRESS_FAILURE_LIMIT`` failures across accounts (password spraying).
"""

from __future__ import annotations

import ipaddress

from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.throttling import BaseThrottle


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the API's throttles take it: ``X-Forwarded-For`` is read only as
    deep as ``API_NUM_PROXIES`` (by default not at all), so a client cannot choose its own
    address; None when what is left is not an IP address."""
    for candidate in (BaseThrottle().get_ident(request), request.META.get("REMOTE_ADDR")):
        try:
            return str(ipaddress.ip_address((candidate or "").strip()))
        except ValueError:
            continue
    return None


#: axes' lockout parameter for the pair (account, address).
ACCOUNT_AND_ADDRESS = ["username", "ip_address"]


def address_failures(ip_address: str) -> int:
    """Failed logins from ``ip_address`` across all accounts within the cool-off."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    rows = AccessAttempt.objects.filter(ip_address=ip_address, attempt_time__gte=since)
    return rows.aggregate(total=Sum("failures_since_start"))["total"] or 0


def lockout_parameters(request_or_attempt, credentials: dict | None = None) -> list:
    """``AXES_LOCKOUT_PARAMETERS``: the pair (account, address) always; the address alone once
    it has failed ``FITNESS_LOGIN_ADDRESS_FAILURE_LIMIT`` times across accounts (axes then finds
    at least that many failures for it, more than ``AXES_FAILURE_LIMIT``, and locks it).

    ``request_or_attempt``: the login's request (axes has set ``axes_ip_address``) or one of
    axes' ``AccessAttempt`` rows (``ip_address``)."""
    ip_address = getattr(request_or_attempt, "axes_ip_address", None) or getattr(request_or_attempt, "ip_address", None)
    if ip_address is None and isinstance(request_or_attempt, HttpRequest):
        ip_address = client_ip(request_or_attempt)
    limit = max(settings.FITNESS_LOGIN_ADDRESS_FAILURE_LIMIT, settings.AXES_FAILURE_LIMIT)
    if ip_address and address_failures(ip_address) >= limit:
        return [ACCOUNT_AND_ADDRESS, "ip_address"]
    return [ACCOUNT_AND_ADDRESS]


def cool_off_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


class LockedOut(APIException):
    """429 for a login of a locked-out account or address, with ``Retry-After`` (the cool-off)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self) -> None:
        self.wait = cool_off_seconds()
        minutes = max(1, round(self.wait / 60))
        detail = (
            f"Too many failed logins for this account from this address, or from this address: logins "
            f"are refused for {minutes} minutes after the last failed one."
        )
        super().__init__({"detail": detail, "code": self.default_code})


def forget_account_failures(sender, request, user, **kwargs) -> None:
    """``user_logged_in`` receiver: the failed logins of this account from this address are
    forgotten. Its failures from other addresses (a stranger's) and the address's failures on
    other accounts (password spraying) stay counted."""
    ip_address = getattr(request, "axes_ip_address", None) or (client_ip(request) if request is not None else None)
    if ip_address is None:
        return
    AxesProxyHandler.reset_attempts(username=user.get_username(), ip_address=ip_address)
