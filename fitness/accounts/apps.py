from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "fitness.accounts"
    label = "accounts"
