"""JWTs that end with a password change: each carries the account's ``token_generation`` of
when it was issued (claim ``gen``; tokens without it count as generation 0), and is refused
once the account's value differs (fitness/accounts/authentication.py for access tokens, the
refresh serializer for refresh tokens). Refresh tokens rotate: the new one keeps the claim,
and the used one is blacklisted first, once (of concurrent uses of one token, one wins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from rest_framework_simplejwt import tokens
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

if TYPE_CHECKING:
    from rest_framework_simplejwt.tokens import Token

    from .models import User

GENERATION_CLAIM = "gen"


def is_current(token: Token, user: User) -> bool:
    """Whether ``token`` was issued since the user's last password change."""
    return token.get(GENERATION_CLAIM, 0) == user.token_generation


class RefreshToken(tokens.RefreshToken):
    """simplejwt's refresh token (listed as outstanding, so that it can be blacklisted) with the
    user's token generation; its access tokens copy the claim."""

    @classmethod
    def for_user(cls, user: User) -> RefreshToken:
        token = super().for_user(user)  # the outstanding-token row is found by ``jti``
        token[GENERATION_CLAIM] = user.token_generation
        return token


def use_once(refresh: tokens.RefreshToken) -> None:
    """Blacklist ``refresh`` now; raises TokenError if another request did first (the
    blacklist's one row per token decides between concurrent uses)."""
    outstanding, _ = refresh.outstand()
    try:
        with transaction.atomic():
            BlacklistedToken.objects.create(token=outstanding)
    except IntegrityError as exc:
        raise TokenError("Token is blacklisted") from exc
