"""Support tickets: a subject, a kind, the customer's orders it is about, and a thread.

Status is written only by `support.services` (through `ticket_transition`), following the
table below: a staff reply answers a ticket, a customer reply (re)opens it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    ORDER = "order", _("Order")
    PAYMENT = "payment", _("Payment")
    OTHER = "other", _("Other")


class OrderAction(models.TextChoices):
    REFILL = "refill", _("Refill")
    CANCEL = "cancel", _("Cancel")
    SPEED_UP = "speed_up", _("Speed up")
    OTHER = "other", _("Other question")


class Status(models.TextChoices):
    OPEN = "open", _("Open")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")


# Who may move a ticket where. Customer replies reopen it; staff replies answer it; either
# side may close it.
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.OPEN: frozenset({Status.ANSWERED, Status.CLOSED}),
    Status.ANSWERED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset({Status.OPEN, Status.ANSWERED}),
}


class Ticket(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tickets")
    subject = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    order_action = models.CharField(max_length=16, choices=OrderAction.choices, blank=True)
    orders = models.ManyToManyField("orders.Order", blank=True, related_name="tickets")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_message_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-id"], name="ticket_user_id"),
            models.Index(fields=["status", "last_message_at"], name="ticket_status_last"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=Status.values), name="ticket_status_valid"),
            models.CheckConstraint(
                condition=models.Q(kind="order") | models.Q(order_action=""), name="ticket_action_only_for_orders"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class Message(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # Whether the panel's staff wrote it (kept even if the author account goes away).
    is_staff_reply = models.BooleanField(default=False)
    body = models.TextField(max_length=10000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Message #{self.pk} on ticket #{self.ticket_id}"


class StatusChange(models.Model):
    """One change of a ticket's status, with who made it."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16)
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.ticket_id}: {self.from_status} → {self.to_status}"
