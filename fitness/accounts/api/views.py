from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from fitness.accounts import selectors, services
from fitness.core.throttling import AuthRateThrottle

from .serializers import (
    ExportSerializer,
    LogoutSerializer,
    PasswordChangeSerializer,
    ProfileSerializer,
    RegisterSerializer,
    UserSerializer,
)


class RegisterView(APIView):
    """Create an account; then obtain tokens at ``/api/v1/auth/token/``."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthRateThrottle]

    @extend_schema(request=RegisterSerializer, responses={201: UserSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = services.user_create(**serializer.validated_data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from exc
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LogoutView(APIView):
    """End a refresh token (logout of one device): it is blacklisted, and refreshing with it is
    401 from then on. Access tokens already issued work until they expire
    (``JWT_ACCESS_MINUTES``). Holding the refresh token is what counts: no access token needed."""

    # Open to all, declared as simplejwt's token views do (no permission classes rather than
    # AllowAny), so that the schema documents its 401 for a bad token as theirs.
    permission_classes: list = []
    authentication_classes: list = []
    throttle_classes = [AuthRateThrottle]

    def get_authenticate_header(self, request: Request) -> str:
        # A bad token is 401 with a challenge, as on the token endpoints (not 403).
        return 'Bearer realm="api"'

    @extend_schema(
        request=LogoutSerializer,
        responses={204: OpenApiResponse(description="the refresh token is blacklisted")},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.refresh_token_revoke(refresh=serializer.validated_data["refresh"])
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordView(APIView):
    """Change the caller's password. Every earlier access and refresh token of the account
    stops working (this one too): log in again with the new password."""

    throttle_classes = [AuthRateThrottle]

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={204: OpenApiResponse(description="changed; every earlier token of the account is revoked")},
        tags=["account"],
    )
    def post(self, request: Request) -> Response:
        serializer = PasswordChangeSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        services.user_change_password(user=request.user, new_password=serializer.validated_data["new_password"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccountView(APIView):
    """The caller's account: profile (time zone), and deletion of the account with all its data."""

    @extend_schema(responses=ProfileSerializer, tags=["account"])
    def get(self, request: Request) -> Response:
        return Response(ProfileSerializer(request.user).data)

    @extend_schema(request=ProfileSerializer, responses=ProfileSerializer, tags=["account"])
    def patch(self, request: Request) -> Response:
        serializer = ProfileSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            user = services.user_update_profile(user=request.user, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"time_zone": exc.messages}) from exc
        return Response(ProfileSerializer(user).data)

    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="deleted, with every workout, session, set and recording")},
        tags=["account"],
    )
    def delete(self, request: Request) -> Response:
        services.user_delete(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccountExportView(APIView):
    """Everything stored about the caller as one JSON document; raw recordings are linked."""

    @extend_schema(responses=ExportSerializer, tags=["account"])
    def get(self, request: Request) -> Response:
        def recording_url(session_id: str) -> str:
            return request.build_absolute_uri(reverse("session-recording", args=[session_id]))

        body = selectors.user_export(user=request.user, recording_url=recording_url)
        response = Response(body)
        response["Content-Disposition"] = f'attachment; filename="fitness-export-{request.user.pk}.json"'
        return response
