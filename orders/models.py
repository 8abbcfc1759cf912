"""Orders, their history, refills and cancel requests.

An order has two independent axes:

- `status`: what the customer sees, in the upstream vocabulary (protocol.ORDER_STATUSES).
  The ledger audit reads it, together with `charge`, `quantity` and `remains`.
- `state`: where the submission to the provider stands (queued → sending → sent, or
  rejected / unknown / canceled). Staff see it; customers do not.

Both are written only by `orders.services.order_transition`, which checks the tables
below, compares-and-sets the row and records an `OrderEvent`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from catalog.models import Route, Service
from kernel import protocol
from providers.models import Provider


class Status(models.TextChoices):
    PENDING = protocol.PENDING, _("Pending")
    IN_PROGRESS = protocol.IN_PROGRESS, _("In progress")
    PROCESSING = protocol.PROCESSING, _("Processing")
    COMPLETED = protocol.COMPLETED, _("Completed")
    PARTIAL = protocol.PARTIAL, _("Partial")
    CANCELED = protocol.CANCELED, _("Canceled")


class State(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    REJECTED = "rejected", _("Rejected")
    UNKNOWN = "unknown", _("Unknown outcome")
    CANCELED = "canceled", _("Canceled before sending")


TERMINAL_STATUSES = protocol.TERMINAL_STATUSES
ACTIVE_STATUSES = tuple(s for s in protocol.ORDER_STATUSES if s not in TERMINAL_STATUSES)
_ALL_STATUSES = frozenset(protocol.ORDER_STATUSES)

# Terminal statuses never regress; the active ones may move freely among themselves
# because providers report them in any order.
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    **{s: _ALL_STATUSES - {s} for s in ACTIVE_STATUSES},
    **{s: frozenset() for s in TERMINAL_STATUSES},
}

# Submission. `unknown` means the provider may have the order: only a person (or a late
# answer from the same attempt) moves it on. `rejected` and `canceled` are final.
STATE_TRANSITIONS: dict[str, frozenset[str]] = {
    State.QUEUED: frozenset({State.SENDING, State.CANCELED}),
    State.SENDING: frozenset({State.SENT, State.QUEUED, State.REJECTED, State.UNKNOWN}),
    State.SENT: frozenset(),
    State.REJECTED: frozenset(),
    State.UNKNOWN: frozenset({State.SENT, State.QUEUED, State.CANCELED}),
    State.CANCELED: frozenset(),
}


class Order(models.Model):
    # No single-column indexes on user and provider: order_user_id and
    # order_provider_status_checked lead with them. Every status or state change writes an
    # entry into each index of this table (state is indexed, so no update is HOT).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders", db_index=False)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="orders")
    # The type decides the fields sent upstream and how the charge was computed.
    service_type = models.CharField(max_length=64, default="Default")
    # Where the order goes (or went) upstream; set at placing, updated to the route actually used.
    route = models.ForeignKey(Route, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    external_service_id = models.CharField("upstream service id", max_length=64, blank=True)
    # Routes that definitively rejected this order; the next submission skips them.
    routes_tried = models.JSONField(default=list, blank=True)

    link = models.CharField(max_length=2000, blank=True)
    # Billed units: drip-feed runs × quantity per run, list lines, 1 package, or a
    # subscription's max × posts; `billing` says what the price is for (protocol.BILL_*).
    quantity = models.BigIntegerField()
    billing = models.CharField(max_length=32, default=protocol.BILL_PER_1000)
    runs = models.PositiveIntegerField(null=True, blank=True)
    interval = models.PositiveIntegerField(null=True, blank=True, help_text="Minutes between runs")
    # The API v2 parameters sent to the provider after `service` (lists kept as lists).
    fields = models.JSONField(default=dict, blank=True)

    # Snapshots taken when the order is placed; nothing is recomputed from the catalogue.
    price_per_1000 = models.DecimalField(max_digits=18, decimal_places=6)
    charge = models.DecimalField(max_digits=18, decimal_places=5)
    provider_rate = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    cost = models.DecimalField(max_digits=18, decimal_places=5, null=True, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    remains = models.BigIntegerField(null=True, blank=True)
    start_count = models.BigIntegerField(null=True, blank=True)
    provider_order_id = models.CharField(max_length=64, null=True, blank=True)
    # A reason the customer may read (why an order was canceled).
    customer_note = models.CharField(max_length=500, blank=True)

    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # When delivery began (the first status after Pending), for the measured time to start.
    started_at = models.DateTimeField(null=True, blank=True)
    # When the status sync found it still pending `route_stall_minutes` after its provider
    # accepted it: counted once against its route's delivery (catalog.routing).
    stalled_at = models.DateTimeField(null=True, blank=True)
    # What the customer was told at placing (catalog.quality): seconds from placing to the
    # start and to completion, and how many orders that was measured from.
    eta_start_seconds = models.PositiveIntegerField(null=True, blank=True)
    eta_complete_seconds = models.PositiveIntegerField(null=True, blank=True)
    eta_sample = models.PositiveIntegerField(null=True, blank=True)
    # Set when the provider said something that makes no sense; staff look at these.
    sync_flag = models.BooleanField(default=False)
    sync_note = models.CharField(max_length=500, blank=True)
    # What the provider says it charged (its `charge`, in its currency), and whether that
    # is more than the panel expected to pay: a loss for staff to look at.
    provider_charge = models.DecimalField(max_digits=18, decimal_places=5, null=True, blank=True)
    margin_flag = models.BooleanField(default=False)
    # A subscription's own word from the provider (Active, Paused, Expired…).
    provider_status = models.CharField(max_length=32, blank=True)

    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        # Each staff action that moves money or an order's state has its own permission.
        permissions = [
            ("resend_order", "Can send queued orders now"),
            ("resolve_unknown_order", "Can resend or resolve orders whose outcome is unknown"),
            ("refund_order", "Can cancel and refund orders, or set them Partial"),
            ("complete_order", "Can mark orders Completed"),
        ]
        indexes = [
            models.Index(fields=["user", "-id"], name="order_user_id"),
            models.Index(fields=["state", "created_at"], name="order_state_created"),
            # The dashboard's margin alerts: a handful of rows among millions.
            models.Index(fields=["id"], condition=Q(margin_flag=True), name="order_margin_flagged"),
            models.Index(fields=["provider", "status", "last_checked_at"], name="order_provider_status_checked"),
            # The duplicate-link guard looks among a customer's active orders only (a link of
            # 2000 multibyte characters would not fit a btree entry, so it is not indexed).
            models.Index(
                fields=["user", "service"], condition=Q(status__in=ACTIVE_STATUSES), name="order_user_service_active"
            ),
        ]
        constraints = [
            # Provider order ids are unique per provider only.
            models.UniqueConstraint(
                fields=["provider", "provider_order_id"],
                condition=Q(provider_order_id__isnull=False),
                name="order_provider_order_id_unique",
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="order_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=Q(charge__gte=0), name="order_charge_not_negative"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(status__in=protocol.ORDER_STATUSES), name="order_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_dripfeed(self) -> bool:
        return bool(self.runs)


class OrderEvent(models.Model):
    """One change of status or state, with why and who."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=500)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.order_id}: {self.from_status}/{self.from_state} → {self.to_status}/{self.to_state}"


class RoutingDecision(models.Model):
    """Why an order was priced on a route at placing, and why each submission attempt went
    to the route it went to (staff only)."""

    class Stage(models.TextChoices):
        PLACING = "placing", _("Placing")
        SENDING = "sending", _("Sending")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="routing_decisions")
    route = models.ForeignKey(Route, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.SENDING)
    policy = models.CharField(max_length=16)
    reason = models.CharField(max_length=1000)
    # Every route considered: id, provider, cost, and why it was passed over or ranked.
    candidates = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.order_id} → route {self.route_id}: {self.reason[:60]}"


class RequestState(models.TextChoices):
    """Forwarding of a refill or cancel request to the provider."""

    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    REJECTED = "rejected", _("Rejected")
    UNKNOWN = "unknown", _("Unknown outcome")


REQUEST_STATE_TRANSITIONS: dict[str, frozenset[str]] = {
    RequestState.QUEUED: frozenset({RequestState.SENDING}),
    RequestState.SENDING: frozenset(
        {RequestState.SENT, RequestState.QUEUED, RequestState.REJECTED, RequestState.UNKNOWN}
    ),
    RequestState.SENT: frozenset(),
    RequestState.REJECTED: frozenset(),
    RequestState.UNKNOWN: frozenset({RequestState.SENT, RequestState.QUEUED, RequestState.REJECTED}),
}


class RefillStatus(models.TextChoices):
    PENDING = protocol.REFILL_PENDING, _("Pending")
    IN_PROGRESS = protocol.REFILL_IN_PROGRESS, _("In progress")
    COMPLETED = protocol.REFILL_COMPLETED, _("Completed")
    REJECTED = protocol.REFILL_REJECTED, _("Rejected")


REFILL_TERMINAL_STATUSES = frozenset({RefillStatus.COMPLETED, RefillStatus.REJECTED})


class UpstreamRequest(models.Model):
    """What a refill and a cancel request share: a request about one sent order, forwarded
    to its provider by the same path (orders.services.requests) through RequestState."""

    state = models.CharField(max_length=16, choices=RequestState.choices, default=RequestState.QUEUED)
    note = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Refill(UpstreamRequest):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refills")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="refills")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="refills")
    provider_refill_id = models.CharField(max_length=64, null=True, blank=True)
    status = models.CharField(max_length=16, choices=RefillStatus.choices, default=RefillStatus.PENDING)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-id"], name="refill_user_id"),
            models.Index(fields=["state", "status", "last_checked_at"], name="refill_state_status_checked"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_refill_id"],
                condition=Q(provider_refill_id__isnull=False),
                name="refill_provider_refill_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Refill #{self.pk} of order #{self.order_id}"

    @property
    def in_flight(self) -> bool:
        return self.state not in (RequestState.REJECTED,) and self.status not in REFILL_TERMINAL_STATUSES


class CancelRequest(UpstreamRequest):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="cancel_requests")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cancel_requests")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="cancel_requests")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "created_at"], name="cancel_state_created")]

    def __str__(self) -> str:
        return f"Cancel request #{self.pk} for order #{self.order_id}"
