"""Writes for accounts."""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from .models import User


@transaction.atomic
def user_create(*, username: str, password: str) -> User:
    """Create an active user. Raises django ValidationError for a weak password or a taken name."""
    model = get_user_model()
    user = model(username=username)
    user.full_clean(exclude=["password"])
    validate_password(password, user=user)
    user.set_password(password)
    user.save()
    return user
