"""The wallet: an append-only ledger of entries plus a cached balance per user.

Only wallets.services writes these rows. The cached `Wallet.balance` always equals the sum
of the user's entries (checked by `manage.py ledger_audit`), and a database constraint
keeps it at or above zero whatever code runs against it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from .gateways.registry import GATEWAYS, gateway_choices
from .states import PaymentStatus


class LedgerIsAppendOnly(Exception):
    """Raised on any attempt to change or remove a ledger entry."""


class Wallet(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.PROTECT, related_name="wallet"
    )
    balance = models.DecimalField(max_digits=18, decimal_places=5, default=Decimal("0"))
    # What the customer owes: money taken back by a gateway (a refund, a reversal, a
    # chargeback) after it was spent. Never part of the balance, so the balance stays >= 0;
    # it equals the sum of the entries' `owed` (checked by `ledger_audit`).
    debt = models.DecimalField(max_digits=18, decimal_places=5, default=Decimal("0"))

    class Meta:
        permissions = [
            ("adjust_wallet", "Can add or deduct funds by hand"),
            ("forgive_debt", "Can forgive what a customer owes"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(balance__gte=0), name="wallet_balance_not_negative"),
            models.CheckConstraint(condition=models.Q(debt__gte=0), name="wallet_debt_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Wallet of {self.user}"


class EntryQuerySet(models.QuerySet["Entry"]):
    # Bulk writes bypass Model.save/delete; refuse them too so that no code path rewrites history.
    def update(self, **kwargs: Any) -> NoReturn:
        raise LedgerIsAppendOnly("ledger entries are never updated")

    def delete(self) -> NoReturn:  # type: ignore[override]
        raise LedgerIsAppendOnly("ledger entries are never deleted")


class Entry(models.Model):
    """One movement of money. Signed: credits are positive, debits negative. Never changed."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", _("Deposit")
        BONUS = "bonus", _("Bonus")
        CHARGE = "charge", _("Charge")
        REFUND = "refund", _("Refund")
        ADJUSTMENT = "adjustment", _("Adjustment")
        COMMISSION = "commission", _("Commission")
        # Money a gateway took back: a refund or reversal, or a chargeback (dispute).
        REVERSAL = "reversal", _("Reversal")
        CHARGEBACK = "chargeback", _("Chargeback")
        # A disputed amount the gateway gave back (the dispute was won).
        REINSTATEMENT = "reinstatement", _("Reinstatement")
        # A deposit paying off what the customer owed.
        DEBT_PAYMENT = "debt_payment", _("Debt payment")
        # A deposit's bonus and the referrer's commission following the deposit back (in
        # proportion to what the gateway took), or forward again when a dispute is won.
        BONUS_REVERSAL = "bonus_reversal", _("Bonus reversal")
        COMMISSION_REVERSAL = "commission_reversal", _("Commission reversal")
        # Staff wrote off what a customer owed (a reason and the staff member recorded).
        DEBT_FORGIVEN = "debt_forgiven", _("Debt forgiven")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallet_entries")
    amount = models.DecimalField(max_digits=18, decimal_places=5)
    # The change in the user's debt (Wallet.debt): positive when money taken back could not
    # be covered by the balance, negative when a deposit or a reinstatement paid it off.
    owed = models.DecimalField(max_digits=18, decimal_places=5, default=Decimal("0"))
    kind = models.CharField(max_length=24, choices=Kind.choices)
    idempotency_key = models.CharField(max_length=128, unique=True)
    # The panel's order id; not a foreign key so the ledger does not depend on the orders app.
    order_ref = models.BigIntegerField(null=True, blank=True, db_index=True)
    payment = models.ForeignKey("Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="wallet_entries_made",
        help_text="The staff member who made this entry by hand.",
    )
    memo = models.CharField(max_length=255, blank=True)
    balance_after = models.DecimalField(max_digits=18, decimal_places=5)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EntryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "entries"
        indexes = [
            # The customer's transactions page walks a user's entries newest first, by key.
            models.Index(fields=["user", "-id"], name="wallets_entry_user_id_desc"),
            # The staff dashboard's refunds per day: the refunds of recent orders alone.
            models.Index(
                fields=["order_ref"],
                include=["amount"],
                condition=models.Q(kind="refund"),
                name="entry_refund_order_ref",
            ),
        ]
        constraints = [
            # A chargeback on an empty wallet moves no balance, only debt.
            models.CheckConstraint(condition=~models.Q(amount=0) | ~models.Q(owed=0), name="entry_moves_something"),
            models.CheckConstraint(condition=models.Q(balance_after__gte=0), name="entry_balance_after_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.idempotency_key})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise LedgerIsAppendOnly("ledger entries are never updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise LedgerIsAppendOnly("ledger entries are never deleted")


class Payment(models.Model):
    """A deposit through a gateway. Money moves only when it becomes paid (see services)."""

    Status = PaymentStatus

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    # A code of wallets.gateways.registry; the choices are read from it at run time.
    gateway = models.CharField(max_length=16, choices=gateway_choices)
    # What is credited; the customer pays amount + fee through the gateway.
    amount = models.DecimalField(max_digits=18, decimal_places=5, validators=[MinValueValidator(Decimal("0.00001"))])
    fee = models.DecimalField(max_digits=18, decimal_places=5, default=Decimal("0"))
    currency = models.CharField(max_length=3)
    # A payment made in another currency at the gateway (crypto, PayPal in EUR): what was
    # asked there, quoted when the payment was created, and what arrived.
    pay_currency = models.CharField(max_length=16, blank=True)
    pay_amount = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    paid_amount = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    # Units of `pay_currency` per one unit of `currency`, quoted when the payment was created
    # (currencies app); what arrives is credited at this rate (wallets/quotes.py).
    rate = models.DecimalField(max_digits=28, decimal_places=12, null=True, blank=True)
    # What the deposit credited, in `currency`: the amount, or less for an underpayment.
    credited = models.DecimalField(max_digits=18, decimal_places=5, null=True, blank=True)
    # What the gateway took back of `credited` (refunds, reversals, open chargebacks).
    reversed_amount = models.DecimalField(max_digits=18, decimal_places=5, default=Decimal("0"))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Hosted gateways: the gateway's id of the payment (Stripe's Checkout Session id).
    # Manual transfers: the reference the customer typed.
    external_ref = models.CharField(max_length=255, blank=True)
    # The gateway's id of the money movement when it is not the payment's (Stripe's
    # PaymentIntent, which its refunds and disputes name): stored when the payment is paid.
    charge_ref = models.CharField(max_length=255, blank=True, db_index=True)
    raw_notification = models.JSONField(null=True, blank=True, help_text="The gateway's last notification, for staff.")
    note = models.CharField(max_length=255, blank=True, help_text="Why it failed or was rejected.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="payments_reviewed"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("review_payment", "Can approve or reject manual payments")]
        indexes = [models.Index(fields=["user", "-id"], name="wallets_payment_user_id_desc")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=models.Q(fee__gte=0), name="payment_fee_not_negative"),
            # One payment per gateway reference, so a notification can only ever match one
            # row. Manual references are typed by customers and may repeat.
            models.UniqueConstraint(
                fields=["gateway", "external_ref"],
                condition=~models.Q(gateway="manual") & ~models.Q(external_ref=""),
                name="payment_unique_gateway_ref",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment #{self.pk} {self.amount} {self.currency} ({self.gateway}, {self.status})"

    @property
    def total(self) -> Decimal:
        """What the customer pays through the gateway."""
        return self.amount + self.fee


class GatewaySetting(models.Model):
    """What staff choose for one gateway. Without a row, or with a field left empty, the
    gateway's defaults in code apply (wallets/conf.py).
    Secrets never live here: a gateway without its secrets in the environment stays off."""

    code = models.CharField(max_length=16, unique=True, choices=gateway_choices, verbose_name="gateway")
    enabled = models.BooleanField(default=True)
    display_name = models.CharField(max_length=64, blank=True, help_text="Empty: the gateway's own name.")
    min_amount = models.DecimalField(
        max_digits=18,
        decimal_places=5,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Smallest deposit. Empty: the gateway's default.",
    )
    max_amount = models.DecimalField(
        max_digits=18,
        decimal_places=5,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Largest deposit. Empty: the gateway's default.",
    )
    fee_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="Added to what the customer pays; the deposit credited is the amount they chose.",
    )
    sort_order = models.IntegerField(null=True, blank=True, help_text="Lower first. Empty: the gateway's default.")

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fee_percent__gte=0) & models.Q(fee_percent__lte=100),
                name="gateway_setting_fee_0_100",
            ),
            models.CheckConstraint(
                condition=models.Q(min_amount__isnull=True)
                | models.Q(max_amount__isnull=True)
                | models.Q(min_amount__lte=models.F("max_amount")),
                name="gateway_setting_min_not_above_max",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.get_code_display()

    def clean(self) -> None:
        if self.code not in GATEWAYS:
            raise ValidationError({"code": "No such gateway."})
        default_min, default_max = GATEWAYS[self.code].default_limits()
        low = default_min if self.min_amount is None else self.min_amount
        high = default_max if self.max_amount is None else self.max_amount
        if low > high:
            raise ValidationError(f"The minimum ({low}) is above the maximum ({high}).")


class BonusTier(models.Model):
    """Deposit at least `min_amount`, get `percent` on top. The highest tier reached applies."""

    min_amount = models.DecimalField(
        max_digits=18, decimal_places=5, validators=[MinValueValidator(Decimal("0.00001"))]
    )
    percent = models.DecimalField(
        max_digits=5, decimal_places=2, validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["min_amount"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(percent__gte=0) & models.Q(percent__lte=100), name="bonus_tier_percent_0_100"
            ),
            models.CheckConstraint(condition=models.Q(min_amount__gt=0), name="bonus_tier_min_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"from {self.min_amount}: +{self.percent}%"


class Affiliate(models.Model):
    """A customer's referral code and how often their link was visited."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="affiliate"
    )
    code = models.CharField(max_length=32, unique=True)
    visits = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.code} ({self.user})"
