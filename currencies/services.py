"""Writes: rates set by hand, rates refreshed from the source, held rates reviewed, and a
customer's choice of display currency.

The source is called before any transaction. What it says is checked currency by
currency: a rate that is not a positive number is refused, a rate that moved more than
CURRENCY_RATES_MAX_JUMP_PERCENT from the current one is held for staff, everything else is
applied. A source that fails changes nothing: the last good rates stay (and go stale after
CURRENCY_RATES_STALE_HOURS, when pages fall back to the panel's currency).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import requests
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kernel.money import MoneyFormatError, to_decimal
from kernel.outbound import GuardedAdapter

from . import conf
from .models import RATE_PLACES, Currency, RateChange
from .sources import Quote, SourceError, parse, rebase

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024
USER_AGENT = "smm-panel-rates/1"
SESSION_KEY = "display_currency"
QUANTUM = Decimal(1).scaleb(-RATE_PLACES)


class CurrencyError(Exception):
    """A rule said no; the message is for the person who asked."""


@dataclass
class Refresh:
    applied: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    error: str = ""

    def summary(self) -> str:
        if self.error:
            return f"rates not refreshed: {self.error}"
        return (
            f"{len(self.applied)} applied, {len(self.held)} held for review, "
            f"{len(self.refused)} refused, {len(self.missing)} missing from the source"
        )


def rates_fetch(*, url: str | None = None) -> Quote:
    """Ask the rates source (a network call: never inside a transaction)."""
    url = url if url is not None else conf.rates_url()
    if not url:
        raise SourceError("no CURRENCY_RATES_URL configured")
    params = {}
    if conf.rates_api_key():
        params[conf.rates_api_key_param()] = conf.rates_api_key()
    session = requests.Session()
    adapter = GuardedAdapter(max_retries=0, allow_private=conf.allow_private_url())
    for prefix in ("http://", "https://"):
        session.mount(prefix, adapter)
    try:
        with session:
            response = session.get(
                url,
                params=params,
                headers={"Accept": "application/json, application/xml;q=0.9", "User-Agent": USER_AGENT},
                timeout=conf.timeouts(),
                allow_redirects=False,
                stream=True,
            )
            body = response.raw.read(MAX_BODY_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        # The exception text can carry the URL with the key in its query: name the class only.
        raise SourceError(f"the source could not be reached ({exc.__class__.__name__})") from exc
    if response.status_code != 200:
        raise SourceError(f"the source answered HTTP {response.status_code}")
    if len(body) > MAX_BODY_BYTES:
        raise SourceError("the answer is too large")
    return parse(body, response.headers.get("Content-Type", ""))


def rates_refresh(*, url: str | None = None) -> Refresh:
    """Refresh every automatic currency from the source; the beat task and staff call it."""
    result = Refresh()
    try:
        quote = rates_fetch(url=url)
        rates = rebase(quote, conf.base_currency())
    except SourceError as exc:
        logger.warning("currency rates: %s; the last good rates stay", exc)
        result.error = str(exc)
        return result
    for currency in Currency.objects.filter(source=Currency.Source.AUTOMATIC).order_by("code"):
        new = rates.get(currency.code)
        if new is None:
            if currency.code in quote.refused:
                result.refused[currency.code] = quote.refused[currency.code]
                logger.warning(
                    "currency %s: the source's rate refused (%s)", currency.code, result.refused[currency.code]
                )
            else:
                result.missing.append(currency.code)
            continue
        outcome = _apply_source_rate(currency_id=currency.pk, rate=new.quantize(QUANTUM))
        if outcome == RateChange.Status.HELD:
            result.held.append(currency.code)
        elif outcome == RateChange.Status.APPLIED:
            result.applied.append(currency.code)
    return result


def _jump_percent(old: Decimal, new: Decimal) -> Decimal:
    return abs(new - old) / old * 100


def _apply_source_rate(*, currency_id: int, rate: Decimal) -> str:
    if rate <= 0:
        return ""
    with transaction.atomic():
        currency = Currency.objects.select_for_update().get(pk=currency_id)
        old = currency.rate
        now = timezone.now()
        if old is not None and _jump_percent(old, rate) > conf.max_jump_percent():
            if currency.held_rate != rate:
                RateChange.objects.create(
                    currency=currency,
                    old_rate=old,
                    new_rate=rate,
                    source=Currency.Source.AUTOMATIC,
                    status=RateChange.Status.HELD,
                    reason=f"moved {_jump_percent(old, rate):.1f}% (more than {conf.max_jump_percent()}%)",
                )
                logger.warning("currency %s: rate %s -> %s held for review", currency.code, old, rate)
            currency.held_rate, currency.held_at = rate, now
            currency.save(update_fields=["held_rate", "held_at"])
            return RateChange.Status.HELD
        if old != rate:
            RateChange.objects.create(
                currency=currency,
                old_rate=old,
                new_rate=rate,
                source=Currency.Source.AUTOMATIC,
                status=RateChange.Status.APPLIED,
            )
        currency.rate, currency.updated_at = rate, now
        currency.held_rate = currency.held_at = None
        currency.save(update_fields=["rate", "updated_at", "held_rate", "held_at"])
    return RateChange.Status.APPLIED


def currency_set_rate(*, currency_id: int, rate: object, actor: User, reason: str = "") -> Currency:
    """Staff set a rate by hand: the currency becomes manual (the source no longer changes it)."""
    try:
        value = to_decimal(rate)
    except MoneyFormatError as exc:
        raise CurrencyError(_("The rate must be a number.")) from exc
    if value <= 0:
        raise CurrencyError(_("The rate must be above zero."))
    value = value.quantize(QUANTUM)
    if value <= 0:
        raise CurrencyError(_("The rate is too small."))
    with transaction.atomic():
        currency = Currency.objects.select_for_update().get(pk=currency_id)
        RateChange.objects.create(
            currency=currency,
            old_rate=currency.rate,
            new_rate=value,
            source=Currency.Source.MANUAL,
            status=RateChange.Status.APPLIED,
            reason=reason[:255],
            actor=actor,
        )
        currency.rate, currency.updated_at, currency.source = value, timezone.now(), Currency.Source.MANUAL
        currency.held_rate = currency.held_at = None
        currency.save(update_fields=["rate", "updated_at", "source", "held_rate", "held_at"])
    return currency


def rate_review(*, currency_id: int, approve: bool, actor: User) -> Currency:
    """Staff approve (apply) or reject (drop) a held rate."""
    with transaction.atomic():
        currency = Currency.objects.select_for_update().get(pk=currency_id)
        if currency.held_rate is None:
            raise CurrencyError(_("%(code)s has no held rate.") % {"code": currency.code})
        status = RateChange.Status.APPROVED if approve else RateChange.Status.REJECTED
        RateChange.objects.create(
            currency=currency,
            old_rate=currency.rate,
            new_rate=currency.held_rate,
            source=Currency.Source.AUTOMATIC,
            status=status,
            actor=actor,
        )
        update = ["held_rate", "held_at"]
        if approve:
            currency.rate, currency.updated_at = currency.held_rate, timezone.now()
            update += ["rate", "updated_at"]
        currency.held_rate = currency.held_at = None
        currency.save(update_fields=update)
    return currency


def display_currency_choose(*, code: str, user: User | None, session: object) -> str:
    """A customer (or a visitor, in the session) picks the currency amounts are shown in.
    The panel's own currency or an empty code clears the choice. Returns the code kept."""
    code = (code or "").strip().upper()
    if code == conf.base_currency():
        code = ""
    if code and not Currency.objects.filter(code=code, enabled=True).exists():
        raise CurrencyError(_("This currency is not offered."))
    session[SESSION_KEY] = code  # type: ignore[index]
    if user is not None and user.is_authenticated:
        get_user_model().objects.filter(pk=user.pk).update(display_currency=code)
        user.display_currency = code
    return code


DEMO_CURRENCIES = (
    ("EUR", "Euro", "€", 2),
    ("GBP", "Pound sterling", "£", 2),
    ("INR", "Indian rupee", "₹", 2),
    ("TRY", "Turkish lira", "₺", 2),
    ("BRL", "Brazilian real", "R$", 2),
    ("IDR", "Indonesian rupiah", "Rp", 0),
)


def currencies_seed_demo() -> Refresh | None:
    """Demo data: a few display currencies, refreshed from the source when one is set."""
    for code, name, symbol, decimals in DEMO_CURRENCIES:
        if code != conf.base_currency():
            Currency.objects.get_or_create(code=code, defaults={"name": name, "symbol": symbol, "decimals": decimals})
    return rates_refresh() if conf.rates_url() else None
