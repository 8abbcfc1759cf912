"""API v2 actions: parse the request's parameters, call the same services as the web pages,
and shape replies exactly as shared/API_V2.md says."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from accounts.models import User
from catalog.models import QualityFigures
from catalog.quality import avg_minutes, is_measured, quality_of
from catalog.selectors import custom_rates_for_user, service_list_with_quality, service_price_for_user
from kernel import protocol
from kernel.money import money
from kernel.numbers import int_or_none
from orders.models import Refill
from orders.queries import status_rows
from orders.services import OrderError, cancel_request, order_place, refill_request
from siteconf.selectors import site_settings
from wallets.selectors import wallet_balance

Params = Mapping[str, str]
ENVELOPE = frozenset({"key", "action"})


def _error(text: str) -> dict[str, str]:
    return {"error": text}


Id = tuple[int | None, str]  # (the number, or None when it is not one; the id as sent)


def _id_out(item: Id) -> int | str:
    """Echo an id as an integer when it is one, else as sent."""
    pk, raw = item
    return pk if pk is not None else raw


def _ids(params: Params, name: str) -> list[Id] | None:
    """The distinct ids of a comma-separated list, in request order, or None when there are
    more than the protocol allows.

    Ids are read with the one number parser and de-duplicated by value: `40,040,0040` names
    order 40 once, so it is looked up, refilled or canceled once and answered once. An id
    that is not a number is kept (once, as sent) for its error reply.
    """
    distinct: dict[int | str, Id] = {}
    for raw in protocol.parse_ids(params.get(name, "")):
        pk = _pk(raw)
        distinct.setdefault(pk if pk is not None else raw, (pk, raw))
        if len(distinct) > protocol.MAX_IDS:
            return None
    return list(distinct.values())


def _pk(raw: str) -> int | None:
    return int_or_none(raw)


def services(user: User, params: Params, headers: Mapping[str, str]) -> Any:
    custom_rates = custom_rates_for_user(user=user)
    return [
        {
            "service": s.pk,
            "name": s.name,
            "type": s.type,
            "category": s.category.name,
            "rate": f"{service_price_for_user(service=s, user=user, custom_rates=custom_rates).normalize():f}",
            "min": str(s.min_quantity),
            "max": str(s.max_quantity),
            "refill": s.refill,
            "cancel": s.cancel,
            "dripfeed": s.dripfeed,
            **quality_fields(quality_of(s)),
        }
        for s in service_list_with_quality().order_by("category__sort_order", "category__name", "position", "pk")
    ]


def _minutes(seconds: int | None) -> str | None:
    minutes = avg_minutes(seconds)
    return None if minutes is None else str(minutes)


def quality_fields(figures: QualityFigures | None) -> dict[str, str | None]:
    """The measured figures added to each service (API page, "services"): minutes and a
    percentage as strings like the other numbers, null until enough orders were measured."""
    sample = figures.finished if figures is not None else 0
    if figures is None or not is_measured(figures):
        return {"avg_start": None, "avg_time": None, "completion_rate": None, "sample": str(sample)}
    per1000 = figures.per1000_p50
    total = None if figures.start_p50 is None or per1000 is None else figures.start_p50 + per1000
    share = figures.completed_share
    return {
        "avg_start": _minutes(figures.start_p50),
        "avg_time": _minutes(total),
        "completion_rate": None if share is None else f"{share.quantize(Decimal('0.1'))}",
        "sample": str(sample),
    }


def add(user: User, params: Params, headers: Mapping[str, str]) -> Any:
    fields = {k: v for k, v in params.items() if k not in ENVELOPE and k != "service"}
    idempotency_key = headers.get("Idempotency-Key") or None
    if idempotency_key is not None and not (idempotency_key.isascii() and idempotency_key.isprintable()):
        # A NUL byte cannot be stored in PostgreSQL: refuse it here rather than fail there.
        return _error("The idempotency key must be printable ASCII text")
    try:
        order = order_place(
            user=user,
            service_id=params.get("service", ""),
            fields=fields,
            idempotency_key=idempotency_key,
        )
    except OrderError as exc:
        return _error(exc.message)
    return {"order": order.pk}


def _status_rows(user: User, pks: list[int]) -> dict[int, dict[str, str]]:
    # Plain rows, not model instances: a status of 100 ids builds 100 replies and nothing else.
    currency = site_settings().base_currency
    return {
        pk: protocol.status_fields(
            charge=charge,
            start_count=start_count,
            status=status,
            remains=remains,
            quantity=quantity,
            currency=currency,
        )
        for pk, charge, start_count, status, remains, quantity in status_rows(user_id=user.pk, pks=pks)
    }


def status(user: User, params: Params, headers: Mapping[str, str]) -> Any:
    if "orders" in params:
        ids = _ids(params, "orders")
        if ids is None:
            return _error(protocol.ERR_TOO_MANY_IDS)
        found = _status_rows(user, [pk for pk, _raw in ids if pk is not None])
        result: dict[str, Any] = {}
        for pk, raw in ids:
            reply = found.get(pk) if pk is not None else None
            # Keyed by the number as written without leading zeros (`040` answers as "40").
            result[str(pk) if pk is not None else raw] = reply or _error(protocol.ERR_INCORRECT_ORDER)
        return result
    pk = _pk(params.get("order", ""))
    reply = _status_rows(user, [pk]).get(pk) if pk is not None else None
    return reply if reply else _error(protocol.ERR_INCORRECT_ORDER)


def _refill_one(user: User, pk: int | None) -> int | dict[str, str]:
    if pk is None:
        return _error(protocol.ERR_INCORRECT_ORDER)
    try:
        return refill_request(user=user, order_id=pk).pk
    except OrderError as exc:
        return _error(exc.message)


def refill(user: User, params: Params, headers: Mapping[str, str]) -> Any:
    if "orders" in params:
        ids = _ids(params, "orders")
        if ids is None:
            return _error(protocol.ERR_TOO_MANY_IDS)
        return [{"order": _id_out(item), "refill": _refill_one(user, item[0])} for item in ids]
    result = _refill_one(user, _pk(params.get("order", "")))
    return result if isinstance(result, dict) else {"refill": str(result)}


def refill_status(user: User, params: Params, headers: Mapping[str, str]) -> Any:
    if "refills" in params:
        ids = _ids(params, "refills")
        if ids is None:
            return _error(protocol.ERR_TOO_MANY_IDS)
        pks = [pk for pk, _raw in ids if pk is not None]
        found = dict(Refill.objects.filter(user=user, pk__in=pks).values_list("pk", "status"))
        return [
            {"refill": _id_out(item), "status": found.get(item[0] or 0) or _error(protocol.ERR_REFILL_NOT_FOUND)}
            for item in ids
        ]
    pk = _pk(params.get("refill", ""))
    found_status = Refill.objects.filter(user=user, pk=pk).values_list("status", flat=True).first() if pk else None
    return {"status": found_status} if found_status else _error(protocol.ERR_REFILL_NOT_FOUND)


def _cancel_one(user: User, pk: int | None) -> int | dict[str, str]:
    if pk is None:
        return _error(protocol.ERR_INCORRECT_ORDER)
    try:
        cancel_request(user=user, order_id=pk)
    except OrderError as exc:
        return _error(exc.message)
    return 1


def cancel(user: User, params: Params, headers: Mapping[str, str]) -> Any:
    name = "orders" if "orders" in params else "order"
    ids = _ids(params, name)
    if ids is None:
        return _error(protocol.ERR_TOO_MANY_IDS)
    if not ids:
        return _error(protocol.ERR_INCORRECT_ORDER)
    return [{"order": _id_out(item), "cancel": _cancel_one(user, item[0])} for item in ids]


def balance(user: User, params: Params, headers: Mapping[str, str]) -> Any:
    amount: Decimal = wallet_balance(user=user)
    return {"balance": f"{money(amount):f}", "currency": site_settings().base_currency}


HANDLERS: dict[str, Callable[[User, Params, Mapping[str, str]], Any]] = {
    "services": services,
    "add": add,
    "status": status,
    "refill": refill,
    "refill_status": refill_status,
    "cancel": cancel,
    "balance": balance,
}
