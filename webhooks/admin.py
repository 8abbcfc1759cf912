"""Staff see every endpoint, event and delivery (secrets never), and Support may replay events."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import Delivery, Endpoint, Event, EventState


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Endpoint)
class EndpointAdmin(_ReadOnly):
    list_display = ("user", "url", "is_enabled", "last_success_at", "updated_at")
    list_filter = ("is_enabled",)
    search_fields = ("user__username", "user__email", "url")
    fields = ("user", "url", "is_enabled", "disabled_reason", "last_success_at", "previous_secret_until", "created_at")
    list_select_related = ("user",)


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("created_at", "attempt", "replay", "url", "status_code", "duration_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-id",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(_ReadOnly):
    list_display = ("event_id", "type", "endpoint", "order_ref", "state", "attempts", "created_at", "last_error")
    list_filter = ("state", "type")
    search_fields = ("event_id", "=order_ref", "endpoint__user__username", "endpoint__user__email")
    list_select_related = ("endpoint__user",)
    show_full_result_count = False
    fields = (
        "event_id",
        "type",
        "endpoint",
        "order_ref",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
        "finished_at",
        "last_error",
        "replay_requested_at",
        "payload",
    )
    inlines = [DeliveryInline]
    actions = ["replay"]

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.replay_event")

    @admin.action(description="Replay selected events (same id, to the customer's endpoint)", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        sent = 0
        for event in queryset.exclude(state=EventState.PENDING).select_related("endpoint")[:100]:
            services.event_replay_request(event=event)
            sent += 1
        self.message_user(
            request, f"{sent} event(s) will be sent again; pending ones are already on their way.", messages.SUCCESS
        )
