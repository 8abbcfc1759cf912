"""Reads for the public pages of the panel itself (the landing page)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Min, Q

from catalog.selectors import service_list_for_sale
from kernel import protocol


@dataclass(frozen=True)
class CategorySummary:
    name: str
    services: int
    from_price: Decimal | None  # the lowest price per 1000, among services billed so
    from_package_price: Decimal | None  # the lowest other price (packages, subscriptions)


def landing_categories(*, limit: int = 12) -> list[CategorySummary]:
    """Categories on sale with how many services and the lowest price per 1000; one query."""
    # Prices of packages and subscriptions are not per 1000 units: never mixed into "from".
    per_1000_types = [t.name for t in protocol.SERVICE_TYPES if t.billing == protocol.BILL_PER_1000]
    per_1000 = Q(billing_unit=protocol.BILL_PER_1000) | Q(billing_unit="", type__in=per_1000_types)
    rows = (
        service_list_for_sale()
        .order_by()
        .values("category__name", "category__sort_order")
        .annotate(
            services=Count("id"),
            from_price=Min("price", filter=per_1000),
            from_package_price=Min("price", filter=~per_1000),
        )
        .order_by("category__sort_order", "category__name")[:limit]
    )
    return [CategorySummary(r["category__name"], r["services"], r["from_price"], r["from_package_price"]) for r in rows]
