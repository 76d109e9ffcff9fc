from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "fitness.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from . import checks  # noqa: F401 - registers the system checks
        from .lockout import forget_account_failures

        user_logged_in.connect(forget_account_failures, dispatch_uid="accounts-forget-account-failures")
