"""Users. A custom user model from the start, so that fields can be added later."""

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """An athlete (or an admin). Owns workouts and sensor sessions."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
