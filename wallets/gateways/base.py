"""The one interface every payment gateway implements.

A gateway knows how to talk to its processor and how to read the processor's answers; it
never touches the ledger or the payment's status. `wallets.services` calls it: creates the
payment, asks the gateway to start it, and settles or fails it from what the gateway
reports, through one settle path for every gateway.

Two kinds exist. A *manual* gateway only records what the customer says (a transfer
reference) and a staff member confirms the money arrived. A *hosted* gateway sends the
customer to the processor's checkout page and learns the outcome from a signed
notification (and, where the processor offers it, by reading the payment back).

Secrets (API keys, webhook secrets) come from the environment through `wallets.conf`;
what staff may change (enabled, display name, limits, fee, order) lives in
`GatewaySetting` and reaches a gateway only through `wallets.selectors.gateway_config`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from kernel.numbers import DecimalAmountField

from ..states import PaymentStatus

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    from ..models import Payment


class GatewayError(Exception):
    """The gateway refused or could not be reached; the message is for logs and staff."""


class SignatureError(GatewayError):
    """A notification whose signature does not verify: it is not from the gateway."""


class CannotList(GatewayError):
    """The gateway offers no list of its payments: reconciliation skips it."""


class GatewayRefusal(Exception):
    """The gateway cannot take this deposit (e.g. an amount it cannot charge); the message is for the customer."""


class Kind(enum.StrEnum):
    MANUAL = "manual"  # staff confirm the money arrived
    HOSTED = "hosted"  # the processor's checkout page, confirmed by its notifications


class DepositForm(forms.Form):
    """The amount every deposit asks for. A gateway that needs more fields subclasses it."""

    amount = DecimalAmountField(label=_("Amount"), max_digits=15, decimal_places=2, min_value=Decimal("0.01"))


@dataclass(frozen=True)
class Checkout:
    """What starting a payment produced."""

    redirect_url: str = ""  # hosted: send the customer here
    reference: str = ""  # the gateway's id for the payment, stored as Payment.external_ref
    message: str = ""  # manual: what to tell the customer next


@dataclass(frozen=True)
class Report:
    """A gateway's account of a payment, already mapped onto the panel's states."""

    status: PaymentStatus
    # What the gateway says was paid, in `currency`; None when it does not say.
    amount: Decimal | None = None
    currency: str = ""
    note: str = ""
    # For a payment made in another currency or for another amount than asked (crypto under-
    # and overpayments): what to credit, in the panel's currency, converted at the rate quoted
    # when the payment was created. The settle path credits at most the payment's amount.
    credit: Decimal | None = None
    # Money coming back (status refunded, or a won dispute): which kind of entry it makes
    # ("reversal", "chargeback", "reinstatement"; empty: a reversal), the gateway's id of
    # the refund or dispute (the ledger key; empty: the notification's event id), and
    # whether `amount` is the total taken back so far (Stripe's amount_refunded) rather than
    # this event's own amount.
    reversal: str = ""
    reference: str = ""
    cumulative: bool = False
    # The gateway's id of the money movement when its later events name it rather than the
    # payment's reference (Stripe's PaymentIntent); stored on the payment when it is paid.
    charge_ref: str = ""


@dataclass(frozen=True)
class Notification:
    """A verified notification. `report` is None for events that are not about a payment's state."""

    event_id: str
    reference: str  # the gateway's id of the payment
    payment_id: int | None = None  # our own id, when the gateway echoes it back
    report: Report | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class Gateway:
    """Subclass it, set the class attributes, implement what your kind needs.

    Manual gateways implement `check` and `start` (no network). Hosted gateways also
    implement `verify_notification` and `fetch`, and fill `STATES`.
    """

    code: ClassVar[str]  # stored on payments and in URLs; never change it
    label: ClassVar[StrOrPromise]  # the default display name (translated), staff may rename it
    kind: ClassVar[Kind]
    button_label: ClassVar[StrOrPromise] = _("Continue")
    sort_order: ClassVar[int] = 100
    form_class: ClassVar[type[DepositForm]] = DepositForm
    # A template with the gateway's own form fields (`form` and `code` in its context).
    partial: ClassVar[str] = ""
    # The processor's payment states onto the panel's; a state not listed is pending.
    STATES: ClassVar[Mapping[str, PaymentStatus]] = {}

    # --- Configuration from the environment -------------------------------------------

    def configured(self) -> bool:
        """Whether its secrets are set. An unconfigured gateway is off, whatever staff chose."""
        return True

    def default_enabled(self) -> bool:
        """Enabled when no staff setting exists."""
        return True

    def default_limits(self) -> tuple[Decimal, Decimal]:
        """Minimum and maximum deposit when no staff setting overrides them."""
        return Decimal("1"), Decimal("10000")

    def pay_currency(self) -> str:
        """The currency the customer pays in at the processor; empty: the panel's. Another
        currency is quoted at creation (wallets/quotes.py); the gateway's reports in it are
        converted back at that rate."""
        return ""

    def instructions(self) -> str:
        """Text shown on the gateway's card."""
        return ""

    # --- Payments ----------------------------------------------------------------------

    def check(self, *, amount: Decimal, currency: str, data: Mapping[str, Any]) -> None:
        """Raise GatewayRefusal when this gateway cannot take `amount` (fee included) or `data`."""

    def start(self, *, payment: Payment, data: Mapping[str, Any], return_url: str) -> Checkout:
        """Start the payment at the processor. Hosted gateways call the network here, so the
        caller never holds a transaction; manual gateways must not."""
        raise NotImplementedError

    def checkout_origins(self) -> tuple[str, ...]:
        """The origins of the processor's pages `start` sends the customer to: the add-funds
        page's Content-Security-Policy (form-action) lets its forms be redirected there."""
        return ()

    def state(self, value: str) -> PaymentStatus:
        return self.STATES.get(value, PaymentStatus.PENDING)

    # --- Notifications and the processor's truth ------------------------------------

    def verify_notification(self, request: HttpRequest) -> Notification:
        """Authenticate a notification; raise SignatureError when it is not from the processor."""
        raise SignatureError(f"{self.code} takes no notifications")

    def confirm(self, *, payment: Payment, notification: Notification) -> Report | None:
        """What to act on for a verified notification. A gateway whose notifications carry no
        trustworthy state returns `self.fetch(payment)` here."""
        return notification.report

    def complete_return(self, *, payment: Payment) -> Notification | None:
        """The customer came back from the processor's page: what that tells (a network call
        for a processor that is paid only when the panel captures), or None to wait for the
        notification."""
        return None

    def fetch(self, *, payment: Payment) -> Report:
        """Read the payment's true state from the processor (a network call)."""
        raise GatewayError(f"{self.code} cannot be asked about a payment")

    def collect(self, *, payment: Payment) -> Report:
        """The pending sweep asks about a payment the customer left: its true state, after the
        panel did what only it can do to finish it (PayPal captures an order the buyer
        approved but never came back from). A network call; by default `fetch`."""
        return self.fetch(payment=payment)

    def list_recent(self, *, since: datetime) -> Iterable[tuple[str, Report]]:
        """The processor's payments created since `since`, as (reference, report) pairs (a
        network call), for reconciliation. A gateway that cannot list raises CannotList."""
        raise CannotList(f"{self.code} cannot list its payments")
