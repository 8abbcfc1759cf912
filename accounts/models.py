from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    email = models.EmailField("e-mail address", unique=True)
    timezone = models.CharField(max_length=64, default="UTC")
    # The language the customer chose (a code of settings.LANGUAGES); blank: the browser's.
    # Kept on the account so that it follows them to every device at login.
    language = models.CharField(max_length=16, blank=True, default="")
    # Per-customer discount on every price (reseller rates), in percent.
    discount_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    referred_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals")
    # A blocked customer (is_active off) can neither log in nor use the API; staff say why.
    blocked_at = models.DateTimeField(null=True, blank=True)
    blocked_reason = models.CharField(max_length=255, blank=True)
    # The currency pages show amounts in (a code of currencies.Currency); empty: the panel's.
    # Only for reading: the ledger, charges and the API stay in the panel's currency.
    display_currency = models.CharField(max_length=3, blank=True, default="")

    class Meta:
        permissions = [
            ("block_user", "Can block and unblock customers"),
            ("impersonate_user", "Can log in as a customer"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(discount_percent__gte=0) & models.Q(discount_percent__lte=100),
                name="user_discount_0_100",
            )
        ]


class ApiKey(models.Model):
    """A customer's API key. Only a keyed hash of the secret is stored; the prefix identifies it."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="api_key")
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class RevokedReason(models.TextChoices):
        PASSWORD_CHANGED = "password_changed", _("your password was changed or reset")

    # A key stopped by the panel rather than by its owner stays, so the API page can say why.
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True, choices=RevokedReason.choices)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class Impersonation(models.Model):
    """A staff member logged in as a customer: who, whom, when, until when (the audit trail)."""

    class Ended(models.TextChoices):
        RETURNED = "returned", "Returned to the admin"
        EXPIRED = "expired", "Expired"
        LOGGED_OUT = "logged_out", "Logged out"

    staff = models.ForeignKey(User, on_delete=models.PROTECT, related_name="impersonations_made")
    customer = models.ForeignKey(User, on_delete=models.PROTECT, related_name="impersonations_received")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_how = models.CharField(max_length=16, choices=Ended.choices, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.staff_id} as {self.customer_id} at {self.started_at:%Y-%m-%d %H:%M}"
