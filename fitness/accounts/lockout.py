"""Lockout after repeated failed logins (django-axes, configured in settings.py): the client
address it counts by, the API's answer to a locked-out login, and forgetting an account's
failures once it logs in."""

from __future__ import annotations

import ipaddress

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.http import HttpRequest
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
            f"Too many failed logins for this account or from this address: logins are refused for "
            f"{minutes} minutes after the last failed one."
        )
        super().__init__({"detail": detail, "code": self.default_code})


def forget_account_failures(sender, request, user, **kwargs) -> None:
    """``user_logged_in`` receiver: the failed logins of this account are forgotten. Failures of
    the same address on other accounts stay counted (a login to one's own account does not
    reset a password-spraying address)."""
    AxesProxyHandler.reset_attempts(username=user.get_username())
