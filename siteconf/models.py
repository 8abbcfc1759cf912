"""The panel's settings: one row (pk 1), edited by the Owner in the admin, with its history.

Secrets and infrastructure stay in the environment (smmpanel/settings.py); what the owner
chooses for the business lives here and takes effect without a restart (selectors.py).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

SINGLETON_PK = 1


def validate_link(value: str) -> None:
    """An absolute http(s) address, or a path on this panel ("/terms/")."""
    if value.startswith("/") and not value.startswith("//"):
        return
    if value.startswith(("https://", "http://")) and len(value) > 8 and " " not in value:
        return
    raise ValidationError(_("Enter an address starting with https:// or a path starting with /."))


class EmailVerification(models.TextChoices):
    NONE = "none", _("None: no e-mail is sent at sign-up")
    OPTIONAL = "optional", _("Optional: a link is sent, logging in works without it")
    MANDATORY = "mandatory", _("Mandatory: no log-in until the address is verified")


class SiteSettings(models.Model):
    panel_name = models.CharField(_("panel name"), max_length=64, default="SMM Panel")
    # The logo is kept in the database (a few KB) and served by the panel itself with its
    # checked type (views.py): no upload directory, no third-party origin on every page.
    logo = models.BinaryField(_("logo"), blank=True, default=b"", editable=False)
    logo_type = models.CharField(max_length=32, blank=True, editable=False)
    logo_version = models.CharField(max_length=16, blank=True, editable=False)
    support_email = models.EmailField(_("support e-mail"), blank=True)
    terms_url = models.CharField(
        _("terms URL"),
        max_length=300,
        blank=True,
        validators=[validate_link],
        help_text=_("Empty: the panel's own terms page (/terms/)."),
    )
    privacy_url = models.CharField(_("privacy policy URL"), max_length=300, blank=True, validators=[validate_link])
    base_currency = models.CharField(
        _("base currency"),
        max_length=5,
        default="USD",
        validators=[RegexValidator(r"^[A-Z]{3,5}$", _("Three to five capital letters, such as USD."))],
        help_text=_("The ledger's and the API's currency. Fixed once money has moved."),
    )
    affiliate_percent = models.DecimalField(
        _("affiliate commission (%)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("5"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text=_("Paid to the referrer on each deposit of a customer they brought."),
    )
    manual_instructions = models.TextField(
        _("manual transfer instructions"), blank=True, default="Send the transfer, then enter its reference."
    )
    bank_details = models.TextField(
        _("bank details"), blank=True, help_text=_("Shown with the instructions on the add-funds page.")
    )
    signup_open = models.BooleanField(_("sign-up open"), default=True)
    email_verification = models.CharField(
        _("e-mail verification"),
        max_length=16,
        choices=EmailVerification.choices,
        default=EmailVerification.OPTIONAL,
    )
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["logo"])

    class Meta:
        verbose_name = _("panel configuration")
        verbose_name_plural = _("panel configuration")
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=SINGLETON_PK), name="site_settings_single_row"),
            models.CheckConstraint(
                condition=models.Q(affiliate_percent__gte=0) & models.Q(affiliate_percent__lte=100),
                name="site_settings_affiliate_0_100",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Panel configuration"))
