from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer as _TokenObtainPairSerializer
from rest_framework_simplejwt.serializers import TokenRefreshSerializer as _TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from fitness.accounts.lockout import LockedOut
from fitness.accounts.models import USERNAME_TAKEN, validate_username_script
from fitness.accounts.selectors import username_taken
from fitness.accounts.tokens import RefreshToken, is_current, use_once


class RegisterSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, style={"input_type": "password"}, max_length=128)

    def validate_username(self, value: str) -> str:
        value = get_user_model().normalize_username(value)  # NFKC, as the model stores it
        try:
            validate_username_script(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        if username_taken(username=value):
            raise serializers.ValidationError(USERNAME_TAKEN)
        return value

    def validate(self, attrs: dict) -> dict:
        try:
            validate_password(attrs["password"], user=get_user_model()(username=attrs["username"]))
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)


class ProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    # A CharField: accounts registered without an email address have "" (not a valid ``email``).
    email = serializers.CharField(read_only=True, help_text="the email address, or empty")
    date_joined = serializers.DateTimeField(read_only=True)
    time_zone = serializers.CharField(
        max_length=64,
        required=False,
        help_text="IANA time zone (e.g. `Europe/Berlin`); statistics group days, weeks and months in it",
    )


class ExportSerializer(serializers.Serializer):
    """Documentation of the export's top level (the body is built by a selector)."""

    format = serializers.CharField(help_text="`fitness-export/1`")
    exported_at = serializers.DateTimeField()
    user = serializers.DictField()
    workouts = serializers.ListField(child=serializers.DictField())
    sessions = serializers.ListField(
        child=serializers.DictField(),
        help_text="newest first; each with `recording_url` (the raw upload) and its sets with their repetitions",
    )
    webhooks = serializers.ListField(
        child=serializers.DictField(),
        help_text="the webhook subscriptions, newest first: `id`, `url`, `events`, `created_at` (never the secret)",
    )


class TokenPairSerializer(serializers.Serializer):
    """What the token and refresh endpoints answer (the schema of their 200): a short-lived
    access token for ``Authorization: Bearer`` and the refresh token that gets the next pair."""

    access = serializers.CharField(
        read_only=True, help_text="JWT for `Authorization: Bearer`, valid JWT_ACCESS_MINUTES"
    )
    refresh = serializers.CharField(
        read_only=True, help_text="JWT for /auth/token/refresh/ and /auth/logout/, valid JWT_REFRESH_DAYS; works once"
    )


class TokenObtainPairSerializer(_TokenObtainPairSerializer):
    """simplejwt's login, watched by django-axes (settings.py, "Authentication"): the request goes
    to ``authenticate()``, so failures are counted; a locked-out account or address is answered
    429 (``locked_out``), whatever the password; a login forgets the account's failures."""

    token_class = RefreshToken

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        max_length = get_user_model()._meta.get_field(self.username_field).max_length
        self.fields[self.username_field] = serializers.CharField(write_only=True, max_length=max_length)

    def validate(self, attrs: dict) -> dict:
        request = self.context.get("request")
        try:
            data = super().validate(attrs)
        except AuthenticationFailed:
            if getattr(request, "axes_locked_out", False):
                raise LockedOut from None
            raise
        user_logged_in.send(sender=type(self.user), request=request, user=self.user)
        return data


class TokenRefreshSerializer(_TokenRefreshSerializer):
    """simplejwt's refresh with rotation: the given token is blacklisted (once: of concurrent
    uses one wins, the others are 401) and a new one answered. 401 for a deleted or inactive
    user and for tokens issued before the account's last password change."""

    token_class = RefreshToken

    def validate(self, attrs: dict) -> dict:
        refresh = self.token_class(attrs["refresh"])  # signature, expiry, type, blacklist
        user = get_user_model().objects.filter(pk=refresh.get(jwt_settings.USER_ID_CLAIM)).first()
        if user is None or not jwt_settings.USER_AUTHENTICATION_RULE(user):
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account")
        if not is_current(refresh, user):
            raise InvalidToken("The token was issued before the account's password changed: log in again.")
        use_once(refresh)
        data = {"access": str(refresh.access_token)}
        # The successor keeps the claims (user, generation) with a new id and lifetime.
        refresh.set_jti()
        refresh.set_exp()
        refresh.set_iat()
        refresh.outstand()
        data["refresh"] = str(refresh)
        return data


class LogoutSerializer(serializers.Serializer):
    refresh = serializers.CharField(help_text="the refresh token to end (its access tokens live on until they expire)")


class PasswordChangeSerializer(serializers.Serializer):
    """The current password (checked like a login: failures count towards the lockout) and the
    new one (Django's password validators)."""

    old_password = serializers.CharField(write_only=True, style={"input_type": "password"}, max_length=128)
    new_password = serializers.CharField(write_only=True, style={"input_type": "password"}, max_length=128)

    def validate_old_password(self, value: str) -> str:
        request = self.context["request"]
        user = authenticate(request, username=request.user.get_username(), password=value)
        if user is None or user.pk != request.user.pk:
            if getattr(request, "axes_locked_out", False):
                raise LockedOut
            raise serializers.ValidationError("this is not the current password")
        return value

    def validate_new_password(self, value: str) -> str:
        try:
            validate_password(value, user=self.context["request"].user)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value
