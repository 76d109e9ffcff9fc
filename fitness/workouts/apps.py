from django.apps import AppConfig


class WorkoutsConfig(AppConfig):
    name = "fitness.workouts"
    label = "workouts"

    def ready(self) -> None:
        # What the model registry shows and evaluates from sessions, without importing this app.
        from fitness.mlmodels import extensions

        from . import live_metrics, selectors, signals  # noqa: F401 - signals: connects the receivers
        from .services import evaluation_corrections, evaluation_sessions

        extensions.register_version_summary(
            extensions.VersionSummary(name="shadow", summarise=selectors.shadow_summaries, empty=selectors.NO_SHADOW)
        )
        extensions.register_version_summary(
            extensions.VersionSummary(
                name="live_metrics", summarise=live_metrics.live_metrics, empty=live_metrics.NO_LIVE_METRICS
            )
        )
        extensions.register_dataset_source(evaluation_sessions.SOURCE)
        extensions.register_dataset_source(evaluation_corrections.SOURCE)
