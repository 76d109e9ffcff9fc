from django.urls import path

from .views import ExerciseStatsView

urlpatterns = [path("exercises/", ExerciseStatsView.as_view(), name="stats-exercises")]
