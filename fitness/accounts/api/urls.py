from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from fitness.core.throttling import AuthRateThrottle

from .serializers import TokenObtainPairSerializer, TokenPairSerializer, TokenRefreshSerializer
from .views import LogoutView, RegisterView

# simplejwt's views answer from their serializer's validate(): the schema says what is sent.
_auth_tag = extend_schema_view(post=extend_schema(tags=["auth"], responses={200: TokenPairSerializer}))

urlpatterns = [
    path("register/", RegisterView.as_view(), name="auth-register"),
    path(
        "token/",
        _auth_tag(TokenObtainPairView).as_view(
            serializer_class=TokenObtainPairSerializer, throttle_classes=[AuthRateThrottle]
        ),
        name="auth-token",
    ),
    path(
        "token/refresh/",
        _auth_tag(TokenRefreshView).as_view(
            serializer_class=TokenRefreshSerializer, throttle_classes=[AuthRateThrottle]
        ),
        name="auth-token-refresh",
    ),
    path("logout/", LogoutView.as_view(), name="auth-logout"),
]
