from django.apps import AppConfig


class WorkoutsConfig(AppConfig):
    name = "fitness.workouts"
    label = "workouts"

    def ready(self) -> None:
        # What the model registry shows and evaluates from sessions, without importing this app.
        from fitness.mlmodels import extensions

        from . import selectors, signals  # noqa: F401 - signals: connects the receivers
        from .services import evaluation_sessions

        extensions.register_version_summary(
            extensions.VersionSummary(name="shadow", summarise=selectors.shadow_summaries, empty=selectors.NO_SHADOW)
        )
        extensions.register_dataset_source(evaluation_sessions.SOURCE)
