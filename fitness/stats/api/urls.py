from django.urls import path

from .views import ExerciseStatsView, RecordsView, StreaksView, TimeseriesView

urlpatterns = [
    path("exercises/", ExerciseStatsView.as_view(), name="stats-exercises"),
    path("timeseries/", TimeseriesView.as_view(), name="stats-timeseries"),
    path("records/", RecordsView.as_view(), name="stats-records"),
    path("streaks/", StreaksView.as_view(), name="stats-streaks"),
]
