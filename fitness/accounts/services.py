"""Writes for accounts."""

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from .models import USERNAME_TAKEN, User, validate_time_zone
from .selectors import username_taken
from .tokens import RefreshToken, use_once

logger = logging.getLogger(__name__)


@transaction.atomic
def user_create(*, username: str, password: str) -> User:
    """Create an active user. Raises django ValidationError (naming the field) for a weak
    password, an invalid name (NFKC-normalised first; one script) or one taken in any case,
    also when a concurrent registration takes it first (the database's constraint)."""
    model = get_user_model()
    user = model(username=username)
    # The folded-name constraint is checked below, so that its error names ``username``.
    user.full_clean(exclude=["password"], validate_constraints=False)
    validate_password(password, user=user)
    if username_taken(username=user.username):
        raise ValidationError({"username": [USERNAME_TAKEN]})
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # a concurrent registration of the name won
        raise ValidationError({"username": [USERNAME_TAKEN]}) from exc
    return user


def user_update_profile(*, user: User, time_zone: str | None = None) -> User:
    """Change profile settings; raises django ValidationError for an unknown time zone."""
    if time_zone is not None:
        validate_time_zone(time_zone)
        user.time_zone = time_zone
        user.save(update_fields=["time_zone"])
    return user


def user_change_password(*, user: User, new_password: str) -> User:
    """Set a new password (validated by the caller) and end every earlier token of the account:
    access tokens by the raised ``token_generation``, refresh tokens blacklisted too."""
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password", "token_generation"])
        user_revoke_refresh_tokens(user=user)
    logger.info("password changed for user %s; earlier tokens revoked", user.pk)
    return user


def user_revoke_refresh_tokens(*, user: User) -> int:
    """Blacklist every unexpired refresh token issued to ``user``; returns how many were listed."""
    outstanding = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    ).only("id")
    rows = [BlacklistedToken(token=token) for token in outstanding]
    BlacklistedToken.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def refresh_token_revoke(*, refresh: str) -> None:
    """Logout: blacklist one refresh token. Raises simplejwt's TokenError when it is not a valid,
    unexpired, not yet blacklisted refresh token."""
    use_once(RefreshToken(refresh))


def user_delete(*, user: User) -> None:
    """Delete the account and everything of it: workouts, sessions, sets, repetitions,
    the stored recordings and cached plots. Rows go in one transaction; files once it commits.
    """
    from fitness.workouts.models import SensorSession
    from fitness.workouts.plots import forget_plots_on_commit

    with transaction.atomic():
        # Locked first, as an upload locks it to insert its session: no upload commits a
        # session of this user between the collection below and the delete.
        list(type(user).objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        sessions = list(SensorSession.objects.filter(user=user).only("id", "file", "finished_at"))
        storage = SensorSession._meta.get_field("file").storage
        names = [s.file.name for s in sessions if s.file.name]
        forget_plots_on_commit(sessions)
        user.delete()
        transaction.on_commit(lambda: _delete_files(storage, names))
    logger.info("account deleted with %d sessions", len(sessions))


def _delete_files(storage, names: list[str]) -> None:
    for name in names:
        try:
            storage.delete(name)
        except Exception:  # OSError locally, botocore's errors on object storage
            logger.exception("stored file %s of a deleted account could not be removed", name)
