"""Reads of the wallet. Customer-owned rows are only reachable through these (404 for others)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, QuerySet, Sum
from django.shortcuts import get_object_or_404

from kernel.db import first_or_none
from kernel.money import ZERO, money, percent_of

from . import conf
from .gateways.base import Gateway
from .gateways.registry import GATEWAYS
from .models import Affiliate, BonusTier, Entry, GatewaySetting, Payment, Wallet

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    from accounts.models import User


def wallet_balance(*, user: Any) -> Decimal:
    """The user's balance; zero for a user without a wallet yet (or an anonymous visitor)."""
    if not getattr(user, "is_authenticated", False):
        return money(ZERO)
    balance = first_or_none(Wallet.objects.filter(user_id=user.pk).values_list("balance", flat=True))
    return money(balance if balance is not None else ZERO)


def wallet_figures(*, user: Any) -> tuple[Decimal, Decimal]:
    """The user's balance and what they owe, in one read; zeros without a wallet."""
    if not getattr(user, "is_authenticated", False):
        return money(ZERO), money(ZERO)
    row = first_or_none(Wallet.objects.filter(user_id=user.pk).values_list("balance", "debt"))
    return (money(row[0]), money(row[1])) if row is not None else (money(ZERO), money(ZERO))


def wallet_debt(*, user: Any) -> Decimal:
    """What the user owes from money a gateway took back after it was spent; zero mostly."""
    if not getattr(user, "is_authenticated", False):
        return money(ZERO)
    debt = first_or_none(Wallet.objects.filter(user_id=user.pk).values_list("debt", flat=True))
    return money(debt if debt is not None else ZERO)


def wallet_owing_list(*, limit: int = 20) -> list[tuple[Any, Decimal]]:
    """Customers who owe money, most first: (user, debt)."""
    rows = Wallet.objects.filter(debt__gt=0).select_related("user").order_by("-debt", "user_id")[:limit]
    return [(row.user, money(row.debt)) for row in rows]


def entry_list_for_user(*, user: User) -> QuerySet[Entry]:
    """The user's ledger, newest first."""
    return Entry.objects.filter(user=user).order_by("-id")


def payment_list_for_user(*, user: User) -> QuerySet[Payment]:
    return Payment.objects.filter(user=user).order_by("-id")


def payment_get_for_user(*, user: User, pk: int) -> Payment:
    return get_object_or_404(Payment, pk=pk, user=user)


@dataclass(frozen=True)
class GatewayConfig:
    """A gateway as offered now: the environment's defaults with what staff chose on top."""

    gateway: Gateway
    enabled: bool
    display_name: StrOrPromise  # staff's name for it, else the gateway's own (translated)
    minimum: Decimal
    maximum: Decimal
    fee_percent: Decimal
    sort_order: int

    @property
    def code(self) -> str:
        return self.gateway.code


def _gateway_config(gateway: Gateway, setting: GatewaySetting | None) -> GatewayConfig:
    minimum, maximum = gateway.default_limits()
    if setting is None:
        return GatewayConfig(
            gateway=gateway,
            enabled=gateway.configured() and gateway.default_enabled(),
            display_name=gateway.label,
            minimum=minimum,
            maximum=maximum,
            fee_percent=ZERO,
            sort_order=gateway.sort_order,
        )
    return GatewayConfig(
        gateway=gateway,
        # Staff can switch a gateway off, never on without its secrets.
        enabled=gateway.configured() and setting.enabled,
        display_name=setting.display_name or gateway.label,
        minimum=minimum if setting.min_amount is None else setting.min_amount,
        maximum=maximum if setting.max_amount is None else setting.max_amount,
        fee_percent=setting.fee_percent,
        sort_order=gateway.sort_order if setting.sort_order is None else setting.sort_order,
    )


def gateway_config_list(*, enabled_only: bool = True) -> list[GatewayConfig]:
    """Every registered gateway's configuration, in display order."""
    settings = {s.code: s for s in GatewaySetting.objects.filter(code__in=list(GATEWAYS))}
    configs = [_gateway_config(gateway, settings.get(code)) for code, gateway in GATEWAYS.items()]
    if enabled_only:
        configs = [c for c in configs if c.enabled]
    return sorted(configs, key=lambda c: (c.sort_order, c.code))


def gateway_config_get(*, code: str) -> GatewayConfig | None:
    """One gateway's configuration, enabled or not; None for a code the registry does not know."""
    gateway = GATEWAYS.get(code)
    if gateway is None:
        return None
    return _gateway_config(gateway, GatewaySetting.objects.filter(code=code).first())


def ledger_has_entries() -> bool:
    return Entry.objects.exists()


def bonus_tier_list() -> QuerySet[BonusTier]:
    return BonusTier.objects.filter(enabled=True).order_by("min_amount")


def bonus_tier_for_amount(*, amount: Decimal) -> BonusTier | None:
    """The highest enabled tier the amount reaches."""
    return BonusTier.objects.filter(enabled=True, min_amount__lte=amount).order_by("-min_amount", "-percent").first()


def bonus_for_amount(*, amount: Decimal) -> tuple[BonusTier | None, Decimal]:
    """The tier a deposit of `amount` reaches and the bonus it earns (rounded down)."""
    tier = bonus_tier_for_amount(amount=amount)
    if tier is None:
        return None, money(ZERO)
    return tier, percent_of(amount, tier.percent)


def affiliate_referrer_for_code(*, code: str) -> User | None:
    if not code or len(code) > 32:
        return None
    found = Affiliate.objects.select_related("user").filter(code=code, user__is_active=True).first()
    return found.user if found else None


@dataclass(frozen=True)
class AffiliateStats:
    code: str
    visits: int
    signups: int
    deposits_count: int
    deposits_total: Decimal
    commissions_total: Decimal
    percent: Decimal


def affiliate_stats(*, affiliate: Affiliate) -> AffiliateStats:
    user = affiliate.user
    deposits = Payment.objects.filter(user__referred_by=user, status=Payment.Status.PAID).aggregate(
        n=Count("id"), total=Sum("amount")
    )
    commissions = Entry.objects.filter(user=user, kind=Entry.Kind.COMMISSION).aggregate(total=Sum("amount"))
    return AffiliateStats(
        code=affiliate.code,
        visits=affiliate.visits,
        signups=user.referrals.count(),
        deposits_count=deposits["n"] or 0,
        deposits_total=money(deposits["total"] or ZERO),
        commissions_total=money(commissions["total"] or ZERO),
        percent=conf.affiliate_percent(),
    )


def commission_list_for_user(*, user: User) -> QuerySet[Entry]:
    return entry_list_for_user(user=user).filter(kind=Entry.Kind.COMMISSION)
