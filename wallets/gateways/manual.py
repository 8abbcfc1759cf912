"""Manual transfers: the customer reports a transfer, a staff member confirms it arrived."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from .. import conf
from .base import Checkout, DepositForm, Gateway, GatewayRefusal, Kind

if TYPE_CHECKING:
    from ..models import Payment


DEFAULT_INSTRUCTIONS = gettext_noop("Send the transfer, then enter its reference.")  # siteconf's default


class ManualDepositForm(DepositForm):
    reference = forms.CharField(
        max_length=120,
        label=_("Reference"),
        help_text=_("The reference or transaction id of your transfer, so staff can find it."),
    )


class ManualGateway(Gateway):
    code = "manual"
    label = _("Manual transfer")
    kind = Kind.MANUAL
    button_label = _("Report transfer")
    sort_order = 20
    form_class = ManualDepositForm
    partial = "wallets/gateways/manual.html"

    def default_enabled(self) -> bool:
        return conf.manual_enabled()

    def default_limits(self) -> tuple[Decimal, Decimal]:
        return conf.manual_limits()

    def instructions(self) -> str:
        # Both are the Owner's text from the panel configuration, shown with line breaks; the
        # default instructions (siteconf's) are shown in the customer's language.
        instructions = gettext(conf.manual_instructions()) if conf.manual_instructions() else ""
        return "\n\n".join(filter(None, (instructions, conf.manual_bank_details())))

    def check(self, *, amount: Decimal, currency: str, data: Mapping[str, Any]) -> None:
        if not str(data.get("reference") or "").strip():
            raise GatewayRefusal(gettext("Enter the reference of your transfer."))

    def start(self, *, payment: Payment, data: Mapping[str, Any], return_url: str) -> Checkout:
        return Checkout(
            reference=str(data.get("reference") or "").strip()[:255],
            message=gettext("Transfer #%(id)s reported. Your balance is credited once staff confirm it.")
            % {"id": payment.pk},
        )
