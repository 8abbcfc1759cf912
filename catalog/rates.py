"""Per-customer custom rates (writes): a customer's own rate or markup for a service, never
below the service's cost. Reading them is catalog.selectors.service_price_for_user."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User

from .models import CustomRate, Service
from .pricing import price_for_customer
from .services import CatalogError


def custom_rate_check(*, service: Service, rate: Decimal | None, markup_percent: Decimal | None) -> None:
    """Refuse what would sell below cost, or a rate and a markup at once (or neither)."""
    if (rate is None) == (markup_percent is None):
        raise CatalogError(_("Give either a rate or a markup over cost, not both."))
    if markup_percent is not None and markup_percent < 0:
        raise CatalogError(_("A negative markup sells below cost."))
    if rate is not None:
        if rate <= 0:
            raise CatalogError(_("A rate must be more than 0."))
        if rate < service.cost:
            raise CatalogError(
                _("%(service)s: the rate %(rate)s is below its cost %(cost)s.")
                % {"service": service, "rate": rate, "cost": service.cost}
            )


def custom_rates_set(
    *,
    user: User,
    services: Iterable[Service],
    rate: Decimal | None = None,
    markup_percent: Decimal | None = None,
    actor: User,
    note: str = "",
) -> int:
    """Give `user` this rate (or markup) on every service: all or none."""
    if user.is_staff or user.is_superuser:
        raise CatalogError(_("Custom rates are for customers, not staff accounts."))
    chosen = list(services)
    for service in chosen:
        custom_rate_check(service=service, rate=rate, markup_percent=markup_percent)
    with transaction.atomic():
        for service in chosen:
            CustomRate.objects.update_or_create(
                user=user,
                service=service,
                defaults={"rate": rate, "markup_percent": markup_percent, "note": note[:255], "created_by": actor},
            )
    return len(chosen)


def custom_rate_effective(*, custom: CustomRate) -> tuple[Decimal, bool]:
    """The price the customer pays with this rate now, and whether the custom rate applies
    (False when the service's cost has risen above it: the usual price is charged)."""
    service = custom.service
    price = price_for_customer(
        price=service.price,
        discount_percent=custom.user.discount_percent,
        cost=service.cost,
        custom_rate=custom.rate,
        custom_markup=custom.markup_percent,
    )
    applied = custom.markup_percent is not None or (custom.rate is not None and custom.rate >= service.cost)
    return price, applied
