"""Validation of what a customer asks for, by the rules of the service type (API_V2.md)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from catalog.models import Service
from kernel import protocol
from kernel.money import amount_for
from kernel.numbers import InvalidNumber, parse_int
from kernel.text import has_hidden_characters, has_unsafe_characters

if TYPE_CHECKING:
    pass
from .base import SUBSCRIPTIONS, OrderError

MAX_LINK_LENGTH = 2000
# A host name as people type it: labels with a dot and a top-level name, maybe a port.
SCHEMELESS_HOST = re.compile(r"^[\w-]+(\.[\w-]+)*\.[^\W\d_]{2,}(:\d{1,5})?$")


MAX_TEXT_LENGTH = 500


MAX_LIST_ITEM_LENGTH = 1000


MAX_FIELDS_JSON = 200_000


IDEMPOTENCY_KEY_MAX = 64


# What a person reads for each field (errors, the form): from the protocol's field table.
LABELS = {spec.name: spec.label.split(" (")[0] for spec in protocol.FIELD_SPECS}


@dataclass(frozen=True)
class OrderRequest:
    link: str
    # Billed units (protocol.BILL_*): units × runs or lines; 1 package; a subscription's
    # max × posts.
    quantity: int
    runs: int | None
    interval: int | None
    fields: dict[str, Any]  # API v2 params after `service`
    billing: str = protocol.BILL_PER_1000


class _Invalid(Exception):
    pass


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    if isinstance(value, list | tuple):
        return any(str(v).strip() for v in value)
    return True


def _int(value: Any) -> int | None:
    """An integer from a form or API value; None when absent; _Invalid when garbage."""
    if not _present(value):
        return None
    try:
        return parse_int(value, max_digits=12)
    except InvalidNumber:
        raise _Invalid from None


def _text(value: Any, *, limit: int = MAX_TEXT_LENGTH) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > limit or has_unsafe_characters(text):
        raise _Invalid
    return text


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
        items = [i for i in items if i]
    else:
        items = protocol.split_list(str(value))
    if any(len(i) > MAX_LIST_ITEM_LENGTH or has_unsafe_characters(i) for i in items):
        raise _Invalid
    return items


def link_is_valid(link: str) -> bool:
    """An absolute http(s) URL with a host, no spaces, control or invisible format characters."""
    if not link or len(link) > MAX_LINK_LENGTH:
        return False
    if any(ch.isspace() for ch in link) or has_hidden_characters(link):
        return False
    try:
        parts = urlsplit(link)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() in {"http", "https"} and bool(host)


def link_complete(text: str) -> str:
    """What people paste (`instagram.com/reel/x`, `www.tiktok.com/@a`) as an https:// URL.

    Only a scheme-less text whose first part is a host name (a dot, no spaces, no colon
    before the first slash) is completed; anything else is left for link_is_valid to judge.
    The web pages complete links; the API keeps the protocol's "Incorrect link".
    """
    link = text.strip()
    if "://" in link or not SCHEMELESS_HOST.match(link.split("/", 1)[0]) or any(ch.isspace() for ch in link):
        return link
    return f"https://{link}"


def error_field(message: str) -> str | None:
    """The form field an OrderError's message is about, to show it next to that field."""
    if message in (protocol.ERR_INCORRECT_LINK, protocol.ERR_DUPLICATE_LINK):
        return "link"
    if message.startswith(("Quantity less than", "Quantity more than")):
        return "quantity"
    if message == protocol.ERR_INCORRECT_SERVICE:
        return "service"
    if message.startswith("Incorrect max"):
        return "max"
    for spec in protocol.FIELD_SPECS:
        if message.startswith(
            (protocol.field_error(spec.name), protocol.field_required(spec.name), f"{LABELS[spec.name]}:")
        ):
            return spec.name
    return None


def _min_quantity(service: Service) -> str:
    return protocol.err_min_quantity(service.min_quantity, gettext)


def _max_quantity(service: Service) -> str:
    return protocol.err_max_quantity(service.max_quantity, gettext)


def order_request_parse(*, service: Service, fields: Mapping[str, Any]) -> OrderRequest:
    """Check a request against the rules of the service's type; raise OrderError.

    The checks run in the order of API_V2.md (link, then quantity, then the type's own
    fields) so that API clients get the same first error as from any other panel.
    """
    stype = protocol.SERVICE_TYPES_BY_NAME.get(service.type)
    if stype is None:
        raise OrderError(_(protocol.ERR_INCORRECT_SERVICE))
    if stype.name == SUBSCRIPTIONS:
        return _parse_subscription(service=service, fields=fields)
    out: dict[str, Any] = {}

    link = str(fields.get("link") or "").strip()
    if not link_is_valid(link):
        raise OrderError(_(protocol.ERR_INCORRECT_LINK))
    out["link"] = link

    runs = interval = None
    if _present(fields.get("runs")) or _present(fields.get("interval")):
        if not (stype.dripfeed_capable and service.dripfeed):
            raise OrderError(_("Drip-feed is not available for this service"))
        try:
            runs = _int(fields.get("runs"))
            interval = _int(fields.get("interval"))
        except _Invalid:
            runs = interval = 0
        if runs is None or not _within(runs, protocol.FIELDS["runs"]):
            raise OrderError(_("Incorrect runs: a whole number of runs from 1 is needed"))
        if interval is None or not _within(interval, protocol.FIELDS["interval"]):
            raise OrderError(_("Incorrect interval: minutes between runs, from 1"))

    if stype.quantity_from:
        try:
            items = _list(fields.get(stype.quantity_from))
        except _Invalid:
            raise OrderError(
                _("%(field)s: each line can have at most %(limit)s characters, none of them invisible or reordering")
                % {"field": protocol.field_label(stype.quantity_from, gettext), "limit": MAX_LIST_ITEM_LENGTH}
            ) from None
        per_run = len(items)
        out[stype.quantity_from] = items
    elif stype.has_quantity:
        try:
            per_run = _int(fields.get("quantity")) or 0
        except _Invalid:
            per_run = 0
    else:
        per_run = 1

    if stype.has_quantity:
        if per_run < service.min_quantity:
            raise OrderError(_min_quantity(service))
        total = per_run * (runs or 1)
        if total > service.max_quantity:
            raise OrderError(_max_quantity(service))
        if not stype.quantity_from:
            out["quantity"] = per_run
        if runs:
            out["runs"] = runs
            out["interval"] = interval
    else:
        total = 1  # one package

    for name in stype.fields:
        if name in ("link", "quantity", "runs", "interval") or name == stype.quantity_from:
            continue
        out.update(_parse_type_field(name=name, value=fields.get(name), required=name in stype.required))

    billing = service.billing
    if billing == protocol.BILL_PER_1000 and not stype.has_quantity:
        # A package that its provider bills per 1000 of its lines (Custom Comments Package).
        lines = [name for name in stype.fields if name in protocol.LIST_FIELDS]
        total = max(1, len(out.get(lines[0], []))) if lines else 1
    _check_size(out)
    return OrderRequest(link=link, quantity=total, runs=runs, interval=interval, fields=out, billing=billing)


def _parse_type_field(*, name: str, value: Any, required: bool) -> dict[str, Any]:
    """One field of the type, checked as the protocol's field table describes it."""
    spec = protocol.FIELDS[name]
    if not _present(value):
        if required:
            raise OrderError(protocol.field_required(name, gettext))
        return {}
    try:
        if spec.kind == protocol.FIELD_LIST:
            items = _list(value)
            if not items:
                raise _Invalid
            return {name: items}
        if spec.kind == protocol.FIELD_NUMBER:
            number = _int(value)
            if number is None or not _within(number, spec):
                raise _Invalid
            return {name: number}
        if spec.kind == protocol.FIELD_LINK:
            text = _text(value, limit=spec.max_length)
            if not link_is_valid(text):
                raise _Invalid
            return {name: text}
        return {name: _text(value, limit=spec.max_length)}
    except _Invalid:
        raise OrderError(protocol.field_error(name, gettext)) from None


def _within(number: int, spec: protocol.FieldSpec) -> bool:
    return (spec.minimum is None or number >= spec.minimum) and (spec.maximum is None or number <= spec.maximum)


def _parse_subscription(*, service: Service, fields: Mapping[str, Any]) -> OrderRequest:
    # Subscriptions have no link: they follow a username's new posts.
    try:
        low = _int(fields.get("min"))
    except _Invalid:
        low = None
    try:
        high = _int(fields.get("max"))
    except _Invalid:
        high = None
    if low is None or low < service.min_quantity:
        raise OrderError(_min_quantity(service))
    if high is None or high > service.max_quantity:
        raise OrderError(_max_quantity(service))
    if low > high:
        raise OrderError(_("Incorrect max: it must not be less than min"))
    out: dict[str, Any] = {}
    try:
        username = _text(fields.get("username"), limit=255)
    except _Invalid:
        raise OrderError(_("Incorrect username")) from None
    if not username:
        raise OrderError(_("Username is required"))
    if any(ch.isspace() for ch in username):
        raise OrderError(_("Incorrect username"))
    out["username"] = username
    out["min"] = low
    out["max"] = high
    for name in ("posts", "old_posts"):
        try:
            count = _int(fields.get(name))
        except _Invalid:
            raise OrderError(protocol.field_error(name, gettext)) from None
        if count is not None:
            out[name] = count
    posts = out.get("posts")
    if posts is not None and not 1 <= posts <= service.max_posts:
        raise OrderError(_("Incorrect posts: from 1 to %(max)s") % {"max": service.max_posts})
    # Without a number of posts a provider may go on delivering (and charging) for ever:
    # the panel always names one, so what it holds bounds what the provider can take.
    out["posts"] = posts or service.max_posts
    try:
        delay = _int(fields.get("delay"))
    except _Invalid:
        delay = -1
    if delay is None:
        raise OrderError(_("Delay is required"))
    if delay not in protocol.SUBSCRIPTION_DELAYS:
        raise OrderError(
            _("Incorrect delay: one of %(delays)s")
            % {"delays": ", ".join(str(d) for d in protocol.SUBSCRIPTION_DELAYS)}
        )
    out["delay"] = delay
    expiry_raw = fields.get("expiry")
    if _present(expiry_raw):
        try:
            expiry = datetime.strptime(str(expiry_raw).strip(), "%d/%m/%Y").date()
        except ValueError:
            raise OrderError(_("Incorrect expiry: a date as d/m/Y is needed")) from None
        if expiry < timezone.now().date():
            raise OrderError(_("Incorrect expiry: the date has passed"))
        out["expiry"] = expiry.strftime("%d/%m/%Y")
    billing = service.billing
    units = high * out["posts"] if billing == protocol.BILL_PER_1000_PER_POST else 1
    return OrderRequest(link="", quantity=units, runs=None, interval=None, fields=out, billing=billing)


def order_amount(*, rate: Decimal, quantity: int, billing: str) -> Decimal:
    """What `quantity` billed units cost at `rate` (API_V2.md, "What an order costs")."""
    return amount_for(rate=rate, units=quantity, per=protocol.BILLING_DIVISOR[billing])


def _check_size(fields: dict[str, Any]) -> None:
    if len(json.dumps(fields)) > MAX_FIELDS_JSON:
        raise OrderError(_("The order is too large: shorten the lists"))


def _fingerprint(*, service_id: Any, fields: Mapping[str, Any]) -> str:
    """What an idempotent retry must repeat: the service and the non-empty fields."""
    canonical: dict[str, Any] = {}
    for key, value in fields.items():
        if not _present(value):
            continue
        if key in protocol.LIST_FIELDS:
            try:
                canonical[key] = _list(value)
            except _Invalid:
                canonical[key] = str(value)
        elif isinstance(value, list | tuple):
            canonical[key] = [str(v).strip() for v in value]
        else:
            canonical[key] = str(value).strip()
    payload = json.dumps({"service": str(service_id).strip(), "fields": canonical}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
