from django.apps import AppConfig


class MlmodelsConfig(AppConfig):
    """Model version registry: upload, validate, evaluate, stage, activate and roll back."""

    name = "fitness.mlmodels"
    label = "mlmodels"
    verbose_name = "Model registry"
