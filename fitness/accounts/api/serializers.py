from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer as _TokenObtainPairSerializer
from rest_framework_simplejwt.serializers import TokenRefreshSerializer as _TokenRefreshSerializer

from fitness.accounts.lockout import LockedOut


class RegisterSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, style={"input_type": "password"}, max_length=128)

    def validate_username(self, value: str) -> str:
        if get_user_model().objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("a user with that username already exists")
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


class TokenObtainPairSerializer(_TokenObtainPairSerializer):
    """simplejwt's login, watched by django-axes (settings.py, "Authentication"): the request goes
    to ``authenticate()``, so failures are counted; a locked-out account or address is answered
    429 (``locked_out``), whatever the password; a login forgets the account's failures."""

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
    """simplejwt's refresh, answering 401 rather than 500 when the token's user was deleted."""

    def validate(self, attrs: dict) -> dict:
        try:
            return super().validate(attrs)
        except get_user_model().DoesNotExist as exc:
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account") from exc
