from django.contrib import admin

from .models import Delivery, DeliveryAttempt, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "url", "events", "created_at"]
    search_fields = ["user__username", "url"]
    raw_id_fields = ["user"]
    exclude = ["secret"]  # signs deliveries: never shown again


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["attempted_at", "status_code", "error", "duration_ms"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "subscription", "event", "session_id", "status", "created_at"]
    list_filter = ["status", "event"]
    readonly_fields = ["subscription", "event", "session_id", "payload", "status", "created_at"]
    inlines = [DeliveryAttemptInline]
