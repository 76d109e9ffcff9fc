"""URL map: /api/v1/ (auth, workouts, sessions, stats, model-versions), /api/schema/, /api/docs/ (Swagger UI),
/api/redoc/, /admin/, /healthz, /metrics (Prometheus; not an API operation). The docs pages load their assets
from our own static files (no network)."""

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from fitness.observability.views import metrics


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and compose health checks."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok"})


api_v1 = [
    path("auth/", include("fitness.accounts.api.urls")),
    path("account/", include("fitness.accounts.api.account_urls")),
    path("stats/", include("fitness.stats.api.urls")),
    path("", include("fitness.workouts.api.urls")),
    path("", include("fitness.mlmodels.api.urls")),
    path("", include("fitness.webhooks.api.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"), name="redoc"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
]


# Errors raised outside DRF's views (a path that matches no route, a malformed id in a
# converter, a crash in middleware) are answered in JSON under /api/, like DRF's own.


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


handler400 = bad_request
handler404 = not_found
handler500 = server_error
