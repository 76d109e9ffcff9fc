from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from fitness.core.throttling import RedeliverRateThrottle
from fitness.openapi import ERROR_SCHEMA
from fitness.webhooks import selectors, services
from fitness.webhooks.models import Subscription
from fitness.workouts.api.permissions import IsOwner

from .serializers import DeliverySerializer, SubscriptionCreatedSerializer, SubscriptionSerializer

_DELIVERY = (
    "Each event is a POST of a JSON body (`event`, `session_id`, `status`, `total_reps`, `occurred_at`, "
    "`delivery_id`) with `Content-Type: application/json` and `X-Signature-256: sha256=<hex HMAC-SHA256 of the "
    "raw body with the secret>`. Each attempt has an overall deadline (10 s by default: connecting, the status "
    "line and the headers together). A non-2xx answer, a timeout or a connection error is retried with "
    "exponential backoff; redirects are not followed."
)


class DeliveryLogPagination(PageNumberPagination):
    """The delivery log: ``page_size`` per request, up to 100."""

    page_size_query_param = "page_size"
    max_page_size = 100


@extend_schema_view(
    list=extend_schema(tags=["webhooks"], description="The caller's webhooks (no secrets)."),
    retrieve=extend_schema(tags=["webhooks"]),
    destroy=extend_schema(tags=["webhooks"], description="Remove the webhook and its delivery log."),
)
class WebhookViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's webhook subscriptions and their delivery logs."""

    serializer_class = SubscriptionSerializer
    permission_classes = [permissions.IsAuthenticated, IsOwner]
    queryset = Subscription.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Subscription.objects.none()
        return selectors.subscription_list(user=self.request.user)

    @extend_schema(
        tags=["webhooks"],
        request=SubscriptionSerializer,
        responses={201: SubscriptionCreatedSerializer, 400: dict},
        description=(
            "Subscribe a URL to session events. The answer holds the `secret` that signs deliveries; it is "
            "never shown again. URLs whose host resolves to a private, loopback, link-local, multicast or "
            "reserved address are refused (400 naming `url`). " + _DELIVERY
        ),
    )
    def create(self, request: Request) -> Response:
        serializer = SubscriptionSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        try:
            subscription = services.subscription_create(user=request.user, **serializer.validated_data)
        except services.SubscriptionError as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from exc
        body = SubscriptionCreatedSerializer(subscription, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Subscription) -> None:
        services.subscription_delete(subscription=instance)

    @extend_schema(
        tags=["webhooks"],
        responses=DeliverySerializer(many=True),
        description="The webhook's delivery log, newest first: each delivery with its attempts.",
    )
    @action(detail=True, methods=["get"], pagination_class=DeliveryLogPagination)
    def deliveries(self, request: Request, pk=None) -> Response:
        queryset = selectors.delivery_list(subscription=self.get_object())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(
        tags=["webhooks"],
        request=None,
        parameters=[OpenApiParameter("delivery_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={
            202: DeliverySerializer,
            404: OpenApiResponse(description="no such delivery of the webhook"),
            409: OpenApiResponse(
                response=ERROR_SCHEMA,
                description=(
                    "the delivery is already pending (queued, being sent or waiting for a retry): "
                    "`code: delivery_pending`; redeliver it once it is `delivered` or `failed`"
                ),
            ),
        },
        description=(
            "Queue the delivery again: the same body and `delivery_id`, with a new round of attempts. "
            "Answered 202 with the delivery (status `pending`); 409 while it is pending (one round at a "
            "time). Limited per user (`API_REDELIVER_THROTTLE_RATE`, 30 an hour by default: 429 above)."
        ),
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>[^/.]+)/redeliver",
        throttle_classes=[RedeliverRateThrottle],
    )
    def redeliver(self, request: Request, pk=None, delivery_id: str | None = None) -> Response:
        delivery = selectors.delivery_get(subscription=self.get_object(), delivery_id=delivery_id)
        if delivery is None:
            raise NotFound("no such delivery of this webhook")
        try:
            delivery = services.delivery_redeliver(delivery=delivery)
        except services.DeliveryPendingError as exc:
            return Response({"detail": str(exc), "code": "delivery_pending"}, status=status.HTTP_409_CONFLICT)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
