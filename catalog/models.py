from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from kernel import protocol
from kernel.protocol import SERVICE_TYPES
from providers.models import UpstreamService

SERVICE_TYPE_CHOICES = [(t.name, t.name) for t in SERVICE_TYPES]
BILLING_CHOICES = [("", "the type's own unit"), *protocol.BILLING_UNITS.items()]


class PanelSettings(models.Model):
    """Panel-wide pricing settings; a single row, edited in the admin."""

    default_markup_percent = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("30"), validators=[MinValueValidator(Decimal("-99"))]
    )
    # An upstream rate rise above this (in percent) is held for an admin to approve.
    price_jump_threshold_percent = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("50"), validators=[MinValueValidator(Decimal("0"))]
    )
    # Routing (catalog.routing): over the failure window, a route is demoted (skipped) when
    # it had at least `route_min_attempts` sends and too many were not accepted or answered,
    # or at least as many delivery outcomes and too many were not delivered (stalled,
    # canceled by the provider, partial). One order is let through every probe interval.
    route_min_attempts = models.PositiveIntegerField(
        _("attempts before a route is judged"),
        default=5,
        validators=[MinValueValidator(1)],
        help_text=_(
            "A route is demoted only after at least this many orders were sent to it (or finished or stalled "
            "on it) within the failure window."
        ),
    )
    route_failure_percent = models.PositiveSmallIntegerField(
        _("failure share that demotes a route (percent)"),
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_(
            "Demote a route when at least this share of the orders sent to it within the window were not "
            "accepted or not answered by its provider."
        ),
    )
    route_undelivered_percent = models.PositiveSmallIntegerField(
        _("undelivered share that demotes a route (percent)"),
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_(
            "Demote a route when at least this share of its orders that finished or stalled within the window "
            "were not delivered: stalled, canceled by the provider, or partial."
        ),
    )
    route_stall_minutes = models.PositiveIntegerField(
        _("an accepted order stalls after (minutes)"),
        default=360,
        help_text=_(
            "An order the provider still reports as pending this long after accepting it counts as not "
            "delivered. Set it above the slowest normal start of your services; 0 turns it off."
        ),
    )
    route_failure_window_minutes = models.PositiveIntegerField(
        _("failure window (minutes)"),
        default=10,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Sends and delivery outcomes are counted over this many minutes from a route's first failure; "
            "a window without enough of them to judge closes and the next failure opens a new one."
        ),
    )
    route_probe_minutes = models.PositiveIntegerField(
        _("probe a demoted route every (minutes)"),
        default=5,
        validators=[MinValueValidator(1)],
        help_text=_("A demoted route gets one order this often; its success brings the route back."),
    )

    class Meta:
        verbose_name = "panel settings"
        verbose_name_plural = "panel settings"

    def __str__(self) -> str:
        return "Panel settings"


class Category(models.Model):
    name = models.CharField(max_length=255, unique=True)
    sort_order = models.IntegerField(default=0)
    markup_percent = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True, help_text="Overrides the panel default when set."
    )
    is_enabled = models.BooleanField("enabled", default=True)

    class Meta:
        ordering = ["sort_order", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class RoutingPolicy(models.TextChoices):
    PRIORITY = "priority", _("Fixed priority")
    CHEAPEST = "cheapest", _("Cheapest")
    BEST = "best", _("Best measured delivery within the price ceiling")


class Service(models.Model):
    """What customers buy: our own name, limits and price, routed to upstream services."""

    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="services")
    name = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=64, choices=SERVICE_TYPE_CHOICES, default="Default")
    min_quantity = models.BigIntegerField(default=1, validators=[MinValueValidator(1)])
    max_quantity = models.BigIntegerField(default=1, validators=[MinValueValidator(1)])
    refill = models.BooleanField(default=False)
    refill_days = models.PositiveIntegerField(
        default=30, help_text="Refills are allowed this many days after completion."
    )
    cancel = models.BooleanField(default=False)
    dripfeed = models.BooleanField(default=False)
    allow_duplicate_link = models.BooleanField(
        default=False, help_text="Allow a new order while another one on the same link is active."
    )
    average_time_minutes = models.PositiveIntegerField(null=True, blank=True)
    billing_unit = models.CharField(
        max_length=32,
        choices=BILLING_CHOICES,
        blank=True,
        help_text="What the rate is the price of. Leave empty for the type's own unit "
        "(packages: one package; subscriptions: 1000 per post; others: 1000); set it only "
        "where the provider bills this service otherwise.",
    )
    max_posts = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1)],
        help_text="Subscriptions: the most posts one subscription covers. An order that names no "
        "posts covers this many: their price is held and what is not delivered is returned.",
    )
    markup_percent = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True, help_text="Overrides the category's markup when set."
    )
    fixed_price = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="A fixed price per 1000 that upstream changes never overwrite.",
    )
    # Current selling price per 1000 (before any customer discount) and what it costs us.
    price = models.DecimalField(max_digits=18, decimal_places=6, default=Decimal("0"))
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=Decimal("0"))
    # An upstream jump above the threshold parks the new price here for an admin.
    held_price = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    held_cost = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    is_enabled = models.BooleanField("enabled", default=True)
    # Staff's order of the services within their category (lowest first), then the id.
    position = models.IntegerField(default=0)
    disabled_reason = models.CharField(max_length=255, blank=True)
    routing_policy = models.CharField(
        max_length=16,
        choices=RoutingPolicy.choices,
        default=RoutingPolicy.PRIORITY,
        help_text=_("How an order's route is chosen. A route that would sell below cost is never chosen."),
    )
    routing_max_cost = models.DecimalField(
        _("price ceiling"),
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_("Best measured delivery: only routes costing at most this per 1000 (panel currency)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category__sort_order", "category__name", "position", "id"]
        permissions = [
            ("approve_price", "Can approve or reject held price changes"),
            ("reprice_service", "Can recompute service prices"),
            ("import_service", "Can import upstream services into the catalogue"),
        ]
        indexes = [models.Index(fields=["is_enabled", "category"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_quantity__gte=models.F("min_quantity")), name="service_max_gte_min"
            ),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="service_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def billing(self) -> str:
        return protocol.billing_of(self.type, self.billing_unit)

    @property
    def billing_label(self) -> str:
        return protocol.BILLING_UNITS[self.billing]

    def clean(self) -> None:
        super().clean()
        stype = protocol.SERVICE_TYPES_BY_NAME.get(self.type)
        if self.billing_unit and stype is not None and self.billing_unit not in stype.billing_choices:
            allowed = ", ".join(protocol.BILLING_UNITS[b] for b in stype.billing_choices)
            raise ValidationError({"billing_unit": f"A {self.type} service is billed {allowed}."})


class Route(models.Model):
    """One way to buy a service upstream; the lowest priority number is tried first."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="routes")
    upstream = models.ForeignKey(UpstreamService, on_delete=models.CASCADE, related_name="routes")
    priority = models.PositiveSmallIntegerField(default=1)
    is_enabled = models.BooleanField("enabled", default=True)
    # Health (catalog.routing), counted in a window that opens at a failure and closes at
    # `*_until`: sends (accepted or not) and delivery outcomes (delivered or not). A demoted
    # route is skipped except for one probe order every probe interval.
    send_attempts = models.PositiveIntegerField(default=0)
    send_failures = models.PositiveIntegerField(default=0)
    send_until = models.DateTimeField(null=True, blank=True)
    delivery_outcomes = models.PositiveIntegerField(default=0)
    delivery_failures = models.PositiveIntegerField(default=0)
    delivery_until = models.DateTimeField(null=True, blank=True)
    demoted_at = models.DateTimeField(null=True, blank=True)
    # Why: "sending" recovers when a probe is accepted, "delivery" when an order starts.
    demoted_for = models.CharField(max_length=16, blank=True)
    demoted_reason = models.CharField(max_length=500, blank=True)
    probe_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["priority", "id"]
        constraints = [models.UniqueConstraint(fields=["service", "upstream"], name="route_unique_upstream")]

    def __str__(self) -> str:
        return f"{self.service_id} → {self.upstream}"


class PriceChange(models.Model):
    class Status(models.TextChoices):
        APPLIED = "applied", _("Applied")
        HELD = "held", _("Held for approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        DISABLED = "disabled", _("Service disabled")

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="price_changes")
    old_price = models.DecimalField(max_digits=18, decimal_places=6)
    new_price = models.DecimalField(max_digits=18, decimal_places=6)
    old_cost = models.DecimalField(max_digits=18, decimal_places=6)
    new_cost = models.DecimalField(max_digits=18, decimal_places=6)
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=255)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.service_id}: {self.old_price} → {self.new_price} ({self.status})"


# --- Measured quality (catalog.quality) ------------------------------------------------------
# One row per route and day, written when an order on that route reaches a final status (in
# the same transaction), when a provider fails to accept or answer, and when a refill ends.
# Durations go into fixed log-spaced histograms (catalog.quality.BINS); percentiles are
# read from them. The figures shown are summaries over the last 30 days, refreshed within a
# minute by a beat task from the rows changed since its cursor.


class RouteDay(models.Model):
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="days")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    completed = models.PositiveIntegerField(default=0)
    partial = models.PositiveIntegerField(default=0)
    canceled = models.PositiveIntegerField(default=0)
    # Orders this route accepted that reached a final status, and the times it did not
    # accept or answer an order (not sent, unknown outcome, rejected by it).
    accepted = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    refills = models.PositiveIntegerField(default=0)
    refills_completed = models.PositiveIntegerField(default=0)
    # Counts per bin: seconds from placing to the start of delivery, and seconds of
    # delivery per 1000 units delivered.
    start_hist = models.JSONField(default=list)
    per1000_hist = models.JSONField(default=list)
    updated_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["route", "day"], name="route_day_unique")]
        indexes = [models.Index(fields=["service", "day"], name="route_day_service_day")]

    def __str__(self) -> str:
        return f"route {self.route_id} on {self.day}"


class FigureShares:
    """The shares derived from a set of figures' counts (percentages, None without a sample):
    for the stored figures and for rows read without their model (catalog.quality.FiguresRow)."""

    finished: int
    completed: int
    partial: int
    canceled: int
    accepted: int
    failures: int
    refills: int
    refills_completed: int

    def share(self, count: int) -> Decimal | None:
        return Decimal(count * 100) / self.finished if self.finished else None

    @property
    def completed_share(self) -> Decimal | None:
        return self.share(self.completed)

    @property
    def partial_share(self) -> Decimal | None:
        return self.share(self.partial)

    @property
    def canceled_share(self) -> Decimal | None:
        return self.share(self.canceled)

    @property
    def refill_share(self) -> Decimal | None:
        return Decimal(self.refills_completed * 100) / self.refills if self.refills else None

    @property
    def failure_share(self) -> Decimal | None:
        asked = self.accepted + self.failures
        return Decimal(self.failures * 100) / asked if asked else None


class QualityFigures(FigureShares, models.Model):
    """Figures over the window (30 days); the percentiles are seconds."""

    finished = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    partial = models.PositiveIntegerField(default=0)
    canceled = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    refills = models.PositiveIntegerField(default=0)
    refills_completed = models.PositiveIntegerField(default=0)
    started = models.PositiveIntegerField(default=0)
    start_p50 = models.PositiveIntegerField(null=True, blank=True)
    start_p90 = models.PositiveIntegerField(null=True, blank=True)
    delivered = models.PositiveIntegerField(default=0)
    per1000_p50 = models.PositiveIntegerField(null=True, blank=True)
    per1000_p90 = models.PositiveIntegerField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        abstract = True


class RouteQuality(QualityFigures):
    route = models.OneToOneField(Route, on_delete=models.CASCADE, primary_key=True, related_name="quality")

    def __str__(self) -> str:
        return f"quality of route {self.route_id}"


class ServiceQuality(QualityFigures):
    service = models.OneToOneField(Service, on_delete=models.CASCADE, primary_key=True, related_name="quality")

    def __str__(self) -> str:
        return f"quality of service {self.service_id}"


class QualityCursor(models.Model):
    """Where the summary task stopped: RouteDay rows updated after `at` are summarised next."""

    at = models.DateTimeField()
    day = models.DateField(help_text=_("The day the window was last rolled for every route."))

    def __str__(self) -> str:
        return f"quality cursor at {self.at}"


class CustomRate(models.Model):
    """One customer's own price for one service: a rate per 1000, or a markup over the cost.

    It takes precedence over the customer's discount; a rate that has fallen below the
    service's cost is not applied (the customer pays the usual price) until staff change it.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="custom_rates")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="custom_rates")
    rate = models.DecimalField(
        _("rate per 1000"),
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_("The customer's price per the service's unit. Leave empty to use a markup."),
    )
    markup_percent = models.DecimalField(
        _("markup over cost (%)"),
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("The customer's markup over the service's cost, instead of a rate."),
    )
    note = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user_id", "service_id"]
        verbose_name = _("custom rate")
        constraints = [
            models.UniqueConstraint(fields=["user", "service"], name="custom_rate_one_per_service"),
            models.CheckConstraint(
                condition=(models.Q(rate__isnull=False) & models.Q(markup_percent__isnull=True))
                | (models.Q(rate__isnull=True) & models.Q(markup_percent__isnull=False)),
                name="custom_rate_rate_or_markup",
            ),
            models.CheckConstraint(
                condition=models.Q(rate__gt=0) | models.Q(rate__isnull=True), name="custom_rate_positive"
            ),
        ]

    def __str__(self) -> str:
        what = f"{self.rate}" if self.rate is not None else f"cost + {self.markup_percent}%"
        return f"{self.user_id} · service {self.service_id}: {what}"


class TextChange(models.Model):
    """An upstream service's name or description changed at a sync: staff decide whether the
    public text of the service sold through it follows."""

    class Field(models.TextChoices):
        NAME = "name", _("Name")
        DESCRIPTION = "description", _("Description")

    class Status(models.TextChoices):
        PENDING = "pending", _("To review")
        ACCEPTED = "accepted", _("Accepted")
        DISMISSED = "dismissed", _("Dismissed")

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="text_changes")
    upstream = models.ForeignKey(UpstreamService, on_delete=models.CASCADE, related_name="text_changes")
    field = models.CharField(max_length=16, choices=Field.choices)
    old_text = models.TextField(blank=True)
    new_text = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("upstream text change")
        permissions = [("review_textchange", "Can accept or dismiss upstream text changes")]
        indexes = [models.Index(fields=["status", "id"], name="textchange_status_id")]

    def __str__(self) -> str:
        return f"{self.get_field_display()} of service {self.service_id}"


class Favourite(models.Model):
    """A service a customer starred on the services page (listed first, one click to order)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favourite_services")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "service"], name="favourite_unique_user_service")]

    def __str__(self) -> str:
        return f"{self.user_id} ★ {self.service_id}"
