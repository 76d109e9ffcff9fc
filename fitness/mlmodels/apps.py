from django.apps import AppConfig


class MlmodelsConfig(AppConfig):
    """Model version registry (upload, evaluate, activate, roll back); built in a later issue."""

    name = "fitness.mlmodels"
    label = "mlmodels"
