from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers


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
    email = serializers.EmailField(read_only=True)
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
