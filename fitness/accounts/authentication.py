"""The API's JWT authentication: simplejwt's, refusing tokens issued before the account's
last password change (401 with the Bearer challenge)."""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import InvalidToken

from .tokens import is_current


class JWTAuthentication(authentication.JWTAuthentication):
    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        if not is_current(validated_token, user):
            raise InvalidToken("The token was issued before the account's password changed: log in again.")
        return user


class JWTAuthenticationScheme(SimpleJWTScheme):
    """OpenAPI: documented as simplejwt's Bearer scheme."""

    target_class = "fitness.accounts.authentication.JWTAuthentication"
