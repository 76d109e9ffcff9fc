"""Writes for accounts."""

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from .models import User, validate_time_zone

logger = logging.getLogger(__name__)


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


def user_update_profile(*, user: User, time_zone: str | None = None) -> User:
    """Change profile settings; raises django ValidationError for an unknown time zone."""
    if time_zone is not None:
        validate_time_zone(time_zone)
        user.time_zone = time_zone
        user.save(update_fields=["time_zone"])
    return user


def user_delete(*, user: User) -> None:
    """Delete the account and everything of it: workouts, sessions, sets, repetitions,
    the stored recordings and cached plots. Rows go in one transaction; files once it commits.
    """
    from fitness.workouts.models import SensorSession
    from fitness.workouts.plots import forget_plots_on_commit

    with transaction.atomic():
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
        except OSError:
            logger.exception("stored file %s of a deleted account could not be removed", name)
