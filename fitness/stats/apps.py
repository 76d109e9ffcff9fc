from django.apps import AppConfig


class StatsConfig(AppConfig):
    name = "fitness.stats"
    label = "stats"
