"""The staff page of one customer (reads): balance, debt, block status, custom rates and the
latest orders, payments, tickets, ledger entries and "log in as" sessions, each a few indexed
queries (the `(user, -id)` indexes), with links to the full filtered lists."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from accounts.models import Impersonation, User
from catalog.models import CustomRate
from catalog.rates import custom_rate_effective
from orders.models import Order
from support.models import Ticket
from wallets.models import Entry, Payment, Wallet

SHOWN = 15


@dataclass(frozen=True)
class CustomerOverview:
    customer: User
    balance: Decimal
    debt: Decimal
    orders: list[Order]
    payments: list[Payment]
    tickets: list[Ticket]
    entries: list[Entry]
    rates: list[tuple[CustomRate, Decimal, bool]]
    impersonations: list[Impersonation]


def customer_overview(*, customer: User) -> CustomerOverview:
    wallet: Any = Wallet.objects.filter(user=customer).first()
    rates = list(CustomRate.objects.filter(user=customer).select_related("service", "user").order_by("service_id"))
    return CustomerOverview(
        customer=customer,
        balance=wallet.balance if wallet else Decimal("0"),
        debt=wallet.debt if wallet else Decimal("0"),
        orders=list(Order.objects.filter(user=customer).select_related("service").order_by("-id")[:SHOWN]),
        payments=list(Payment.objects.filter(user=customer).order_by("-id")[:SHOWN]),
        tickets=list(Ticket.objects.filter(user=customer).order_by("-last_message_at")[:SHOWN]),
        entries=list(Entry.objects.filter(user=customer).order_by("-id")[:SHOWN]),
        rates=[(rate, *custom_rate_effective(custom=rate)) for rate in rates],
        impersonations=list(
            Impersonation.objects.filter(customer=customer).select_related("staff").order_by("-id")[:5]
        ),
    )
