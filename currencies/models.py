"""Display currencies: what staff offer customers to read amounts in, with their rates.

A rate is how many units of the currency one unit of the panel's currency buys
(`PANEL_CURRENCY`), an exact Decimal. Rates only ever change how amounts are *shown*
(and, for a gateway paid in another currency, what a payment is quoted at when it is
created, recorded on the payment): the ledger and the API stay in the panel's currency.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import conf

RATE_DIGITS, RATE_PLACES = 28, 12


class Currency(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual", _("Set by hand")
        AUTOMATIC = "automatic", _("From the rates source")

    code = models.CharField(
        _("ISO code"),
        max_length=3,
        unique=True,
        validators=[RegexValidator(r"^[A-Z]{3}$", _("Three capital letters (ISO 4217), e.g. EUR."))],
    )
    name = models.CharField(_("name"), max_length=64)
    symbol = models.CharField(_("symbol"), max_length=8, blank=True)
    decimals = models.PositiveSmallIntegerField(
        _("decimals"),
        default=2,
        validators=[MaxValueValidator(8)],
        help_text=_("Decimals shown (ISO 4217 minor unit)."),
    )
    rate = models.DecimalField(
        _("rate"),
        max_digits=RATE_DIGITS,
        decimal_places=RATE_PLACES,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("1e-12"))],
        help_text=_("Units of this currency per one unit of the panel's currency."),
    )
    enabled = models.BooleanField(_("offered to customers"), default=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.AUTOMATIC)
    updated_at = models.DateTimeField(_("rate updated"), null=True, blank=True)
    # A rate from the source that jumped beyond CURRENCY_RATES_MAX_JUMP_PERCENT: not applied
    # until staff approve it.
    held_rate = models.DecimalField(
        _("held rate"), max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, null=True, blank=True
    )
    held_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("currency")
        verbose_name_plural = _("currencies")
        permissions = [
            ("refresh_rates", _("Can refresh rates from the source")),
            ("review_rate", _("Can approve or reject held rates")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rate__isnull=True) | models.Q(rate__gt=0), name="currency_rate_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"

    def is_stale(self, now: datetime | None = None) -> bool:
        """An automatic rate older than CURRENCY_RATES_STALE_HOURS is not shown (nor quoted)."""
        if self.rate is None or self.updated_at is None:
            return True
        if self.source == self.Source.MANUAL:
            return False  # staff chose it; it ages only when they change it
        return (now or timezone.now()) - self.updated_at > conf.stale_after()

    def usable(self, now: datetime | None = None) -> bool:
        return self.enabled and self.rate is not None and not self.is_stale(now)


class RateChange(models.Model):
    """The history of every rate: applied, held for review, approved or rejected."""

    class Status(models.TextChoices):
        APPLIED = "applied", _("Applied")
        HELD = "held", _("Held for review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    currency = models.ForeignKey(Currency, on_delete=models.CASCADE, related_name="changes")
    old_rate = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, null=True, blank=True)
    new_rate = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_PLACES)
    source = models.CharField(max_length=16, choices=Currency.Source.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("rate change")

    def __str__(self) -> str:
        return f"{self.currency.code}: {self.old_rate} → {self.new_rate} ({self.status})"
