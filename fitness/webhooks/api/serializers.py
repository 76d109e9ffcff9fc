from rest_framework import serializers

from fitness.webhooks.models import (
    FINISHED_STATUS_CHOICES,
    URL_MAX_LENGTH,
    Delivery,
    DeliveryAttempt,
    Event,
    Subscription,
)


class SubscriptionSerializer(serializers.ModelSerializer):
    url = serializers.CharField(
        max_length=URL_MAX_LENGTH,
        help_text=(
            "https:// or http:// URL that receives a POST per event. Its host must resolve to public "
            "addresses only (private, loopback, link-local, multicast and reserved ones are refused)."
        ),
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=Event.choices),
        allow_empty=False,
        max_length=len(Event.values),
        help_text="The events sent: `session.done` (counted), `session.failed` (could not be counted).",
    )

    class Meta:
        model = Subscription
        fields = ["id", "url", "events", "created_at"]
        read_only_fields = ["id", "created_at"]


class SubscriptionCreatedSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text=(
            "Shown only in this answer. Each delivery carries `X-Signature-256: sha256=<hex HMAC-SHA256 "
            "of the raw body with this secret>`."
        ),
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]


class EventSerializer(serializers.Serializer):
    """The JSON body POSTed to the subscription's URL."""

    event = serializers.ChoiceField(choices=Event.choices)
    session_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=FINISHED_STATUS_CHOICES)
    total_reps = serializers.IntegerField(allow_null=True, help_text="null for a failed session")
    occurred_at = serializers.DateTimeField(allow_null=True, help_text="when the counting ended (UTC)")
    delivery_id = serializers.UUIDField(help_text="the same for retries and redeliveries: drop duplicates by it")


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["attempted_at", "status_code", "error", "duration_ms"]


class DeliverySerializer(serializers.ModelSerializer):
    payload = EventSerializer(read_only=True)
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = ["id", "event", "session_id", "status", "created_at", "payload", "attempts"]
        read_only_fields = fields
