from django.urls import path
from rest_framework.routers import DefaultRouter

from .exercises import ExerciseViewSet
from .exports import SessionExportView
from .negotiation import FirstRendererNegotiation
from .views import ExerciseSetViewSet, RepetitionViewSet, SessionViewSet, WorkoutViewSet

router = DefaultRouter()
router.register("workouts", WorkoutViewSet, basename="workout")
router.register("sessions", SessionViewSet, basename="session")
router.register("sets", ExerciseSetViewSet, basename="set")
router.register("repetitions", RepetitionViewSet, basename="repetition")
router.register("exercises", ExerciseViewSet, basename="exercise")

#: ``/sessions/{id}/plot.png`` has a file name, so it is routed here rather than by the router
#: (which would append a slash).
session_plot = SessionViewSet.as_view({"get": "plot"}, detail=True, content_negotiation_class=FirstRendererNegotiation)

urlpatterns = [
    path("sessions/<uuid:pk>/plot.png", session_plot, name="session-plot"),
    path("sessions/<uuid:pk>/export/", SessionExportView.as_view(), name="session-export"),
    *router.urls,
]
