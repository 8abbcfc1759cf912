from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

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
    disabled_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category__sort_order", "category__name", "id"]
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

    class Meta:
        ordering = ["priority", "id"]
        constraints = [models.UniqueConstraint(fields=["service", "upstream"], name="route_unique_upstream")]

    def __str__(self) -> str:
        return f"{self.service_id} → {self.upstream}"


class PriceChange(models.Model):
    class Status(models.TextChoices):
        APPLIED = "applied", "Applied"
        HELD = "held", "Held for approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        DISABLED = "disabled", "Service disabled"

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


class Favourite(models.Model):
    """A service a customer starred on the services page (listed first, one click to order)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favourite_services")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "service"], name="favourite_unique_user_service")]

    def __str__(self) -> str:
        return f"{self.user_id} ★ {self.service_id}"
