"""The pricing rule, as pure functions (no database): see DESIGN.md, Pricing."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kernel.money import HUNDRED, rate


def effective_markup(
    *, service_markup: Decimal | None, category_markup: Decimal | None, default_markup: Decimal
) -> Decimal:
    if service_markup is not None:
        return service_markup
    if category_markup is not None:
        return category_markup
    return default_markup


def cost_per_1000(*, upstream_rate: Decimal, exchange_rate: Decimal) -> Decimal:
    return rate(upstream_rate * exchange_rate)


def selling_price(*, cost: Decimal, markup_percent: Decimal, fixed_price: Decimal | None = None) -> Decimal:
    """Price per 1000 before any customer discount."""
    if fixed_price is not None:
        return rate(fixed_price)
    return max(rate(cost * (HUNDRED + markup_percent) / HUNDRED), Decimal("0"))


def price_for_customer(
    *,
    price: Decimal,
    discount_percent: Decimal,
    cost: Decimal | None = None,
    custom_rate: Decimal | None = None,
    custom_markup: Decimal | None = None,
) -> Decimal:
    """What one customer pays per 1000: their own rate (or markup over the cost) for this
    service when staff set one, else the price less their discount.

    A custom rate below the cost is never sold: the usual price applies instead (staff are
    refused such a rate when they set it; this covers a cost that rose since).
    """
    custom: Decimal | None = None
    if custom_rate is not None:
        custom = rate(custom_rate)
    elif custom_markup is not None and cost is not None:
        custom = rate(cost * (HUNDRED + custom_markup) / HUNDRED)
    if custom is not None and custom > 0 and (cost is None or custom >= cost):
        return custom
    return rate(price * (HUNDRED - discount_percent) / HUNDRED)


@dataclass(frozen=True)
class PriceDecision:
    action: str  # "unchanged", "apply", "hold", "disable"
    price: Decimal
    cost: Decimal
    reason: str


def decide_price_change(
    *,
    old_price: Decimal,
    old_cost: Decimal,
    new_cost: Decimal,
    markup_percent: Decimal,
    fixed_price: Decimal | None,
    jump_threshold_percent: Decimal,
) -> PriceDecision:
    """What to do when the upstream cost of a service changes.

    The panel never sells at a loss without a person deciding so: a fixed price below the
    new cost disables the service, and a cost rise above the threshold is held for approval.
    """
    new_price = selling_price(cost=new_cost, markup_percent=markup_percent, fixed_price=fixed_price)
    if new_price == old_price and new_cost == old_cost:
        return PriceDecision("unchanged", old_price, old_cost, "")
    if fixed_price is not None:
        if new_price < new_cost:
            return PriceDecision("disable", new_price, new_cost, f"fixed price {new_price} is below cost {new_cost}")
        return PriceDecision("apply", new_price, new_cost, "upstream cost changed; fixed price kept")
    if old_cost > 0 and new_cost > old_cost:
        jump = (new_cost - old_cost) * HUNDRED / old_cost
        if jump > jump_threshold_percent:
            return PriceDecision(
                "hold",
                new_price,
                new_cost,
                f"upstream cost rose {jump.quantize(Decimal('0.1'))}% (threshold {jump_threshold_percent}%)",
            )
    return PriceDecision("apply", new_price, new_cost, "upstream cost changed")
