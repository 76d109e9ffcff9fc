from rest_framework.routers import DefaultRouter

from .views import SessionViewSet, WorkoutViewSet

router = DefaultRouter()
router.register("workouts", WorkoutViewSet, basename="workout")
router.register("sessions", SessionViewSet, basename="session")

urlpatterns = router.urls
