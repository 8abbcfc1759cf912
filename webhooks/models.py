"""A customer's webhook endpoint, the outbox of events for it, and the log of every attempt."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Endpoint(models.Model):
    """One endpoint per customer. The signing secret is kept encrypted (webhooks.vault): the
    panel must sign with it, so a hash would not do, and the database alone does not reveal it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoint")
    url = models.URLField(_("URL"), max_length=2000)
    secret_encrypted = models.TextField()
    # After a rotation the old secret keeps signing (beside the new one) until this time.
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    is_enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user} → {self.url}"


class EventState(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class Event(models.Model):
    """An outbox row, written in the transaction of the change it reports. `event_id` is given
    then, so every attempt and replay of one change carries the same `webhook-id`."""

    event_id = models.CharField(max_length=40, unique=True)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=32)
    # Events of one order (its refills' too) are delivered in id order, one at a time.
    order_ref = models.BigIntegerField()
    payload = models.JSONField()
    created_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=EventState.choices, default=EventState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A worker sending it holds it until then (a crashed worker's lease runs out).
    lease_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    replay_requested_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("replay_event", "Can replay webhook events")]
        indexes = [
            models.Index(
                fields=["endpoint", "order_ref", "id"],
                name="webhook_event_pending_order",
                condition=models.Q(state="pending"),
            ),
            models.Index(fields=["next_attempt_at"], name="webhook_event_due", condition=models.Q(state="pending")),
            models.Index(fields=["endpoint", "-id"], name="webhook_event_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Delivery(models.Model):
    """One attempt to deliver one event (a replay too)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveIntegerField()
    replay = models.BooleanField(default=False)
    url = models.CharField(max_length=2000)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["endpoint", "-id"], name="webhook_delivery_endpoint")]

    def __str__(self) -> str:
        return f"{self.event_id} #{self.attempt}: {self.status_code or self.error}"

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
