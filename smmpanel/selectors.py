"""Reads for the public pages of the panel itself (the landing page)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Min


@dataclass(frozen=True)
class CategorySummary:
    name: str
    services: int
    from_price: Decimal


def landing_categories(*, limit: int = 12) -> list[CategorySummary]:
    """Categories on sale with how many services and the lowest price per 1000; one query."""
    from catalog.selectors import service_list_for_sale

    rows = (
        service_list_for_sale()
        .order_by()
        .values("category__name", "category__sort_order")
        .annotate(services=Count("id"), from_price=Min("price"))
        .order_by("category__sort_order", "category__name")[:limit]
    )
    return [CategorySummary(r["category__name"], r["services"], r["from_price"]) for r in rows]
