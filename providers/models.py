from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models


class Provider(models.Model):
    name = models.CharField(max_length=100, unique=True)
    api_url = models.URLField("API URL", max_length=500)
    api_key = models.CharField("API key", max_length=255)
    currency = models.CharField(max_length=3, default="USD")
    # Multiplies the provider's rates into the panel's currency.
    exchange_rate = models.DecimalField(
        max_digits=18, decimal_places=8, default=Decimal("1"), validators=[MinValueValidator(Decimal("0.00000001"))]
    )
    is_enabled = models.BooleanField("enabled", default=True)
    # Set when the provider itself is the problem (our account lacks funds, bad key):
    # orders wait instead of being refunded, and staff are told.
    paused_reason = models.CharField(max_length=255, blank=True)
    balance = models.DecimalField(max_digits=18, decimal_places=5, null=True, blank=True)
    balance_currency = models.CharField(max_length=3, blank=True)
    balance_checked_at = models.DateTimeField(null=True, blank=True)
    low_balance_alert = models.DecimalField(
        max_digits=18, decimal_places=5, default=Decimal("10"), help_text="Staff are e-mailed below this balance."
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("resume_provider", "Can resume a paused provider"),
            ("sync_provider", "Can sync a provider's services and test its connection"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_usable(self) -> bool:
        return self.is_enabled and not self.paused_reason

    @property
    def masked_key(self) -> str:
        if len(self.api_key) <= 8:
            return "•" * len(self.api_key)
        return f"{self.api_key[:4]}…{self.api_key[-4:]}"


class UpstreamService(models.Model):
    """A provider's service as its `services` action last described it."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="upstream_services")
    external_id = models.CharField(max_length=64)
    name = models.CharField(max_length=500)
    type = models.CharField(max_length=64, default="Default")
    category = models.CharField(max_length=255, blank=True)
    rate = models.DecimalField(max_digits=18, decimal_places=6)
    min_quantity = models.BigIntegerField(default=1)
    max_quantity = models.BigIntegerField(default=1)
    refill = models.BooleanField(default=False)
    cancel = models.BooleanField(default=False)
    dripfeed = models.BooleanField(default=False)
    description = models.TextField(blank=True)
    is_removed = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_id"], name="upstream_service_unique_per_provider")
        ]
        ordering = ["provider", "category", "name"]

    def __str__(self) -> str:
        return f"{self.provider.name} #{self.external_id}: {self.name}"


class ProviderCall(models.Model):
    """One HTTP call to a provider, kept for support and reconciliation."""

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        REJECTED = "rejected", "Rejected"
        NOT_SENT = "not_sent", "Not sent"
        UNKNOWN = "unknown", "Unknown outcome"

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="calls")
    action = models.CharField(max_length=32)
    order_ref = models.BigIntegerField(null=True, blank=True, db_index=True, help_text="Panel order id, if any")
    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.PositiveIntegerField()
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.CharField(max_length=500, blank=True)
    request = models.TextField(blank=True)
    body = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["provider", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.provider} {self.action} {self.outcome}"
