"""Helpers for order tests: money in a wallet, orders with their ledger entries, and a service sold
through simulator routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import uuid4

from catalog.models import Service
from orders.models import Order
from providers.models import Provider
from simulators.provider import Simulator
from tests.factories import ProviderFactory, RouteFactory, ServiceFactory, UpstreamServiceFactory
from wallets.models import Entry
from wallets.selectors import wallet_balance
from wallets.services import wallet_credit, wallet_debit


def fund(user: Any, amount: str | Decimal = "100") -> None:
    wallet_credit(user=user, amount=Decimal(str(amount)), kind="deposit", idempotency_key=f"test:{uuid4().hex}")


def ledger(user: Any) -> tuple[Decimal, int]:
    """(balance, number of entries): what a refused request must leave unchanged."""
    return wallet_balance(user=user), Entry.objects.filter(user=user).count()


def order_booked(user, service, *, charge: str, quantity: int = 1000, debit: bool = True) -> Order:  # type: ignore[no-untyped-def]
    """An order as orders.services places it: the row and its charge entry."""
    order = Order.objects.create(
        user=user,
        service=service,
        quantity=quantity,
        price_per_1000=Decimal(charge),
        charge=Decimal(charge),
        link="https://x/y",
    )
    if debit:
        wallet_debit(
            user=user,
            amount=Decimal(charge),
            kind=Entry.Kind.CHARGE,
            idempotency_key=f"order:{order.pk}:charge",
            order_ref=order.pk,
        )
    return order


def order_finished(order: Order, status: str, *, remains: int | None = None, refund: str | None = None) -> None:
    Order.objects.filter(pk=order.pk).update(status=status, remains=remains)
    if refund is not None:
        wallet_credit(
            user=order.user,
            amount=Decimal(refund),
            kind=Entry.Kind.REFUND,
            idempotency_key=f"order:{order.pk}:refund",
            order_ref=order.pk,
        )


@dataclass
class Shop:
    """Services of the panel routed to services of one or more simulators."""

    simulator: Simulator
    providers: dict[int, Provider] = field(default_factory=dict)

    def provider(self, sim: Simulator | None = None, **extra: Any) -> Provider:
        sim = sim or self.simulator
        if id(sim) not in self.providers:
            self.providers[id(sim)] = ProviderFactory(api_url=sim.url, api_key="test-key", **extra)
        return self.providers[id(sim)]

    def service(
        self,
        *,
        type: str = "Default",
        min: int = 10,
        max: int = 10000,
        rate: str = "1.00",
        price: str = "1.300000",
        refill: bool = False,
        cancel: bool = False,
        dripfeed: bool = False,
        sims: list[Simulator] | None = None,
        **extra: Any,
    ) -> Service:
        service = ServiceFactory(
            type=type,
            min_quantity=min,
            max_quantity=max,
            price=Decimal(price),
            refill=refill,
            cancel=cancel,
            dripfeed=dripfeed,
            **extra,
        )
        for priority, sim in enumerate(sims or [self.simulator], start=1):
            self.route(service, sim=sim, priority=priority, rate=rate)
        return service

    def route(self, service: Service, *, sim: Simulator | None = None, priority: int = 1, rate: str = "1.00") -> Any:
        sim = sim or self.simulator
        external = sim.add_service(
            name=f"{service.name} upstream",
            type=service.type,
            rate=rate,
            min=service.min_quantity,
            max=service.max_quantity,
            refill=service.refill,
            cancel=service.cancel,
            dripfeed=service.dripfeed,
        )
        upstream = UpstreamServiceFactory(
            provider=self.provider(sim),
            external_id=str(external),
            type=service.type,
            rate=Decimal(rate),
            min_quantity=service.min_quantity,
            max_quantity=service.max_quantity,
            refill=service.refill,
            cancel=service.cancel,
            dripfeed=service.dripfeed,
        )
        return RouteFactory(service=service, upstream=upstream, priority=priority)
