"""The gateways the panel offers: one instance per class, by code.

Adding a gateway is one line here. Whether a gateway is offered is decided at run time by
its secrets in the environment and by staff in the admin (`GatewaySetting`), read through
`wallets.selectors.gateway_config_list`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Gateway
from .btcpay import BTCPayGateway
from .manual import ManualGateway
from .nowpayments import NowPaymentsGateway
from .paypal import PayPalGateway
from .stripe import StripeGateway

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

GATEWAYS: dict[str, Gateway] = {
    gateway.code: gateway
    for gateway in (
        StripeGateway(),
        PayPalGateway(),
        BTCPayGateway(),
        NowPaymentsGateway(),
        ManualGateway(),
    )
}


class UnknownGateway(KeyError):
    pass


def gateway_get(code: str) -> Gateway:
    try:
        return GATEWAYS[code]
    except KeyError:
        raise UnknownGateway(code) from None


def gateway_choices() -> list[tuple[str, StrOrPromise]]:
    """For the model fields that hold a gateway code (a callable, so migrations never list them)."""
    return [(gateway.code, gateway.label) for gateway in GATEWAYS.values()]
