"""Writes for orders: placing, the one status/state transition, submission, status sync,
refills, cancel requests and the staff actions.

The promise (DESIGN.md): every order is bought upstream exactly once or refunded.

- Placing debits the wallet and creates the order in one transaction; the submit task is
  enqueued on commit, and a sweeper re-enqueues whatever a lost message left behind.
- Submission claims the order with a compare-and-set `queued → sending` and calls the
  provider outside any transaction. An answer we cannot interpret leaves it `unknown`,
  never retried or refunded without a person.
- Every refund happens inside `order_transition`, in the same transaction as the move to
  `Partial` or `Canceled`, under the idempotency key `order:<id>:refund`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import mail_admins
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog.models import Route, Service
from catalog.pricing import cost_per_1000
from catalog.selectors import service_for_sale_with_routes, service_price_for_user, service_routes
from kernel import protocol
from kernel.db import first_or_none
from kernel.money import amount_for, money, refund_for_remains
from kernel.numbers import InvalidNumber, parse_int
from kernel.text import has_hidden_characters, has_unsafe_characters
from providers.client import NotSent, OrderStatus, ProviderError, Rejected, UnknownOutcome
from providers.models import Provider
from providers.services import provider_client, provider_pause

from .models import (
    ACTIVE_STATUSES,
    REFILL_TERMINAL_STATUSES,
    REQUEST_STATE_TRANSITIONS,
    STATE_TRANSITIONS,
    STATUS_TRANSITIONS,
    TERMINAL_STATUSES,
    CancelRequest,
    Order,
    OrderEvent,
    Refill,
    RefillStatus,
    RequestState,
    State,
    Status,
)

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

MAX_LINK_LENGTH = 2000
MAX_TEXT_LENGTH = 500
MAX_LIST_ITEM_LENGTH = 1000
MAX_FIELDS_JSON = 200_000
IDEMPOTENCY_KEY_MAX = 64
SUBSCRIPTIONS = "Subscriptions"
LABELS = {
    "min": "Min per post",
    "max": "Max per post",
    "comments": "Comments",
    "usernames": "Usernames",
    "hashtags": "Hashtags",
    "keywords": "Keywords",
    "groups": "Groups",
    "hashtag": "Hashtag",
    "username": "Username",
    "media": "Media link",
    "answer_number": "Answer number",
    "country": "Country",
    "device": "Device",
    "type_of_traffic": "Type of traffic",
    "google_keyword": "Google keyword",
    "referring_url": "Referring URL",
    "posts": "Posts",
    "old_posts": "Old posts",
    "delay": "Delay",
    "expiry": "Expiry",
}


class OrderError(Exception):
    """A business rule refused the request; `message` is shown to the person as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# =========================================================================================
# Validation of what a customer asks for
# =========================================================================================
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


def _min_quantity(service: Service) -> str:
    return protocol.err_min_quantity(service.min_quantity)


def _max_quantity(service: Service) -> str:
    return protocol.err_max_quantity(service.max_quantity)


def order_request_parse(*, service: Service, fields: Mapping[str, Any]) -> OrderRequest:
    """Check a request against the rules of the service's type; raise OrderError.

    The checks run in the order of API_V2.md (link, then quantity, then the type's own
    fields) so that API clients get the same first error as from any other panel.
    """
    stype = protocol.SERVICE_TYPES_BY_NAME.get(service.type)
    if stype is None:
        raise OrderError(protocol.ERR_INCORRECT_SERVICE)
    if stype.name == SUBSCRIPTIONS:
        return _parse_subscription(service=service, fields=fields)
    out: dict[str, Any] = {}

    link = str(fields.get("link") or "").strip()
    if not link_is_valid(link):
        raise OrderError(protocol.ERR_INCORRECT_LINK)
    out["link"] = link

    runs = interval = None
    if _present(fields.get("runs")) or _present(fields.get("interval")):
        if not (stype.dripfeed_capable and service.dripfeed):
            raise OrderError("Drip-feed is not available for this service")
        try:
            runs = _int(fields.get("runs"))
            interval = _int(fields.get("interval"))
        except _Invalid:
            runs = interval = 0
        if runs is None or runs < 1 or runs > 10_000:
            raise OrderError("Incorrect runs: a whole number of runs from 1 is needed")
        if interval is None or interval < 1 or interval > 60 * 24 * 30:
            raise OrderError("Incorrect interval: minutes between runs, from 1")

    if stype.quantity_from:
        try:
            items = _list(fields.get(stype.quantity_from))
        except _Invalid:
            raise OrderError(
                f"{LABELS[stype.quantity_from]}: each line can have at most {MAX_LIST_ITEM_LENGTH} characters, "
                "none of them invisible or reordering"
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
    label = LABELS.get(name, name)
    if not _present(value):
        if required:
            raise OrderError(f"{label} is required")
        return {}
    try:
        if name in protocol.LIST_FIELDS:
            items = _list(value)
            if not items:
                raise _Invalid
            return {name: items}
        if name == "answer_number":
            number = _int(value)
            if number is None or number < 1:
                raise _Invalid
            return {name: number}
        if name == "device":
            number = _int(value)
            if number is None or not 1 <= number <= 5:
                raise _Invalid
            return {name: number}
        if name == "type_of_traffic":
            number = _int(value)
            if number is None or not 1 <= number <= 3:
                raise _Invalid
            return {name: number}
        if name in ("media", "referring_url"):
            text = _text(value, limit=MAX_LINK_LENGTH)
            if not link_is_valid(text):
                raise _Invalid
            return {name: text}
        return {name: _text(value)}
    except _Invalid:
        raise OrderError(f"Incorrect {label.lower()}") from None


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
        raise OrderError("Incorrect max: it must not be less than min")
    out: dict[str, Any] = {}
    try:
        username = _text(fields.get("username"), limit=255)
    except _Invalid:
        raise OrderError("Incorrect username") from None
    if not username:
        raise OrderError("Username is required")
    if any(ch.isspace() for ch in username):
        raise OrderError("Incorrect username")
    out["username"] = username
    out["min"] = low
    out["max"] = high
    for name in ("posts", "old_posts"):
        try:
            count = _int(fields.get(name))
        except _Invalid:
            raise OrderError(f"Incorrect {LABELS[name].lower()}") from None
        if count is not None:
            out[name] = count
    posts = out.get("posts")
    if posts is not None and not 1 <= posts <= service.max_posts:
        raise OrderError(f"Incorrect posts: from 1 to {service.max_posts}")
    # Without a number of posts a provider may go on delivering (and charging) for ever:
    # the panel always names one, so what it holds bounds what the provider can take.
    out["posts"] = posts or service.max_posts
    try:
        delay = _int(fields.get("delay"))
    except _Invalid:
        delay = -1
    if delay is None:
        raise OrderError("Delay is required")
    if delay not in protocol.SUBSCRIPTION_DELAYS:
        raise OrderError("Incorrect delay: one of " + ", ".join(str(d) for d in protocol.SUBSCRIPTION_DELAYS))
    out["delay"] = delay
    expiry_raw = fields.get("expiry")
    if _present(expiry_raw):
        try:
            expiry = datetime.strptime(str(expiry_raw).strip(), "%d/%m/%Y").date()
        except ValueError:
            raise OrderError("Incorrect expiry: a date as d/m/Y is needed") from None
        if expiry < timezone.now().date():
            raise OrderError("Incorrect expiry: the date has passed")
        out["expiry"] = expiry.strftime("%d/%m/%Y")
    billing = service.billing
    units = high * out["posts"] if billing == protocol.BILL_PER_1000_PER_POST else 1
    return OrderRequest(link="", quantity=units, runs=None, interval=None, fields=out, billing=billing)


def order_amount(*, rate: Decimal, quantity: int, billing: str) -> Decimal:
    """What `quantity` billed units cost at `rate` (API_V2.md, "What an order costs")."""
    return amount_for(rate=rate, units=quantity, per=protocol.BILLING_DIVISOR[billing])


def _check_size(fields: dict[str, Any]) -> None:
    if len(json.dumps(fields)) > MAX_FIELDS_JSON:
        raise OrderError("The order is too large: shorten the lists")


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


# =========================================================================================
# Placing
# =========================================================================================
def order_place(*, user: User, service_id: Any, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Order:
    """Check, charge and queue one order. Web pages, mass order and the API all call this.

    Raises OrderError with a message from API_V2.md (or a plain one for type-specific
    fields); nothing is charged, created or queued then.
    """
    key = (idempotency_key or "").strip() or None
    fingerprint = _fingerprint(service_id=service_id, fields=fields)
    if key is not None:
        if len(key) > IDEMPOTENCY_KEY_MAX:
            raise OrderError(f"The idempotency key can have at most {IDEMPOTENCY_KEY_MAX} characters")
        existing = _order_for_key(user=user, key=key, fingerprint=fingerprint)
        if existing is not None:
            return existing

    try:
        pk = parse_int(service_id)
    except InvalidNumber:
        raise OrderError(protocol.ERR_INCORRECT_SERVICE) from None
    service, routes = service_for_sale_with_routes(pk=pk)
    if service is None:
        raise OrderError(protocol.ERR_INCORRECT_SERVICE)
    request = order_request_parse(service=service, fields=fields)
    if not routes:
        # Nothing could ever deliver it; do not take the money.
        raise OrderError(protocol.ERR_INCORRECT_SERVICE)
    route = routes[0]
    price = service_price_for_user(service=service, user=user)
    charge = order_amount(rate=price, quantity=request.quantity, billing=request.billing)
    if charge <= 0:
        raise OrderError("The charge for this order rounds to zero: order a larger quantity")
    provider_rate = route.upstream.rate
    cost = order_amount(
        rate=cost_per_1000(upstream_rate=provider_rate, exchange_rate=route.upstream.provider.exchange_rate),
        quantity=request.quantity,
        billing=request.billing,
    )

    try:
        return _order_create(
            user=user,
            service=service,
            route=route,
            request=request,
            price=price,
            charge=charge,
            provider_rate=provider_rate,
            cost=cost,
            key=key,
            fingerprint=fingerprint,
        )
    except IntegrityError:
        # Two requests with the same idempotency key raced; the other one won.
        if key is None:
            raise
        existing = _order_for_key(user=user, key=key, fingerprint=fingerprint)
        if existing is None:
            raise
        return existing


def _order_for_key(*, user: User, key: str, fingerprint: str) -> Order | None:
    existing = Order.objects.filter(user=user, idempotency_key=key).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise OrderError("This idempotency key was already used for a different order")
    return existing


def _order_create(
    *,
    user: User,
    service: Service,
    route: Route,
    request: OrderRequest,
    price: Decimal,
    charge: Decimal,
    provider_rate: Decimal,
    cost: Decimal,
    key: str | None,
    fingerprint: str,
) -> Order:
    from wallets.services import InsufficientFunds, wallet_debit

    with transaction.atomic():
        if request.link and not service.allow_duplicate_link:
            # Serialises this customer's placements so two parallel requests cannot both
            # pass the duplicate-link check. Lock order: user row, then the wallet row.
            # NO KEY UPDATE, so it does not block the FOR KEY SHARE that PostgreSQL takes on
            # the user row when another transaction (a refund holding the wallet row) checks
            # its ledger entry's foreign key at commit: FOR UPDATE made that a deadlock.
            first_or_none(get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk))
            if key is not None:
                # A retry with the same key that waited for this lock behind the first
                # attempt gets the first attempt's order, not a duplicate-link error.
                earlier = _order_for_key(user=user, key=key, fingerprint=fingerprint)
                if earlier is not None:
                    return earlier
            duplicate = Order.objects.filter(
                user=user, service=service, status__in=ACTIVE_STATUSES, link=request.link
            ).exists()
            if duplicate:
                raise OrderError(protocol.ERR_DUPLICATE_LINK)
        order = Order.objects.create(
            user=user,
            service=service,
            service_type=service.type,
            route=route,
            provider=route.upstream.provider,
            external_service_id=route.upstream.external_id,
            link=request.link,
            quantity=request.quantity,
            billing=request.billing,
            runs=request.runs,
            interval=request.interval,
            fields=request.fields,
            price_per_1000=price,
            charge=charge,
            provider_rate=provider_rate,
            cost=cost,
            status=Status.PENDING,
            state=State.QUEUED,
            idempotency_key=key,
            request_fingerprint=fingerprint,
        )
        try:
            wallet_debit(
                user=user,
                amount=charge,
                kind="charge",
                idempotency_key=f"order:{order.pk}:charge",
                memo=f"Order #{order.pk}",
                order_ref=order.pk,
            )
        except InsufficientFunds:
            raise OrderError(protocol.ERR_NOT_ENOUGH_FUNDS) from None
        OrderEvent.objects.create(
            order=order,
            to_status=order.status,
            to_state=order.state,
            reason=f"placed, charged {charge}",
            actor=user,
        )
        transaction.on_commit(partial(enqueue_submit, order_id=order.pk), robust=True)
    return order


# =========================================================================================
# The one writer of status and state
# =========================================================================================
def order_transition(
    *,
    order: Order,
    reason: str,
    status: str | None = None,
    state: str | None = None,
    actor: User | None = None,
    changes: Mapping[str, Any] | None = None,
) -> bool:
    """Move an order to a new status and/or state, compare-and-set against the values the
    caller read, record an OrderEvent and, on entering Partial or Canceled, refund in the
    same transaction. Returns False (and changes nothing) when the row moved meanwhile.

    Raises ValueError for a move the transition tables do not allow.
    """
    new_status = status or order.status
    new_state = state or order.state
    if new_status != order.status and new_status not in STATUS_TRANSITIONS[order.status]:
        raise ValueError(f"order #{order.pk}: status {order.status} → {new_status} is not allowed")
    if new_state != order.state and new_state not in STATE_TRANSITIONS[order.state]:
        raise ValueError(f"order #{order.pk}: state {order.state} → {new_state} is not allowed")
    values: dict[str, Any] = dict(changes or {})
    values["status"] = new_status
    values["state"] = new_state
    now = timezone.now()
    values["updated_at"] = now
    entering = new_status if new_status != order.status else None
    if entering in (Status.COMPLETED, Status.PARTIAL):
        values.setdefault("completed_at", now)
    remains = values.get("remains", order.remains)
    if entering == Status.PARTIAL and remains is None:
        raise ValueError(f"order #{order.pk}: Partial needs remains")
    if entering == Status.CANCELED and remains is None:
        values["remains"] = order.quantity

    event = None
    if new_status != order.status or new_state != order.state:
        event = OrderEvent(
            order_id=order.pk,
            from_status=order.status,
            to_status=new_status,
            from_state=order.state,
            to_state=new_state,
            reason=reason[:500],
            actor=actor,
            created_at=now,
        )
    refunding = entering in (Status.PARTIAL, Status.CANCELED)
    if not refunding and connection.vendor == "postgresql" and not connection.in_atomic_block:
        # Nothing else has to share the transaction: the update and its event in one
        # statement, atomic on its own (submission moves every order twice this way).
        if not _transition_in_one_statement(order=order, values=values, event=event):
            return False
    else:
        with transaction.atomic():
            updated = Order.objects.filter(pk=order.pk, status=order.status, state=order.state).update(**values)
            if updated != 1:
                return False
            if event is not None:
                event.save(force_insert=True)
            if entering in (Status.PARTIAL, Status.CANCELED):
                _refund(order=order, status=entering, remains=values.get("remains", order.remains), actor=actor)
    for name, value in values.items():
        setattr(order, name, value)
    return True


def _transition_in_one_statement(*, order: Order, values: Mapping[str, Any], event: OrderEvent | None) -> bool:
    """order_transition's compare-and-set UPDATE and its OrderEvent INSERT as one PostgreSQL
    statement (a data-modifying WITH): both happen or neither, and only if the row still has
    the status and state the caller read. True when it moved."""
    assignments, params = [], []
    for name, value in values.items():
        field = Order._meta.get_field(name)
        assert isinstance(field, models.Field)
        assignments.append(f"{connection.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(value.pk if isinstance(value, models.Model) else value, connection))
    params += [order.pk, order.status, order.state]
    # Column names come from the model, values are parameters.
    update = "UPDATE orders_order SET " + ", ".join(assignments) + " WHERE id = %s AND status = %s AND state = %s"  # noqa: S608
    with connection.cursor() as cursor:
        if event is None:
            cursor.execute(update, params)
            return cursor.rowcount == 1
        columns, event_params = [], []
        for field in OrderEvent._meta.concrete_fields:
            if field.primary_key or field.attname == "order_id":
                continue
            columns.append(connection.ops.quote_name(field.column))
            event_params.append(field.get_db_prep_save(getattr(event, field.attname), connection))
        cursor.execute(
            "WITH moved AS (" + update + " RETURNING id) "  # noqa: S608
            "INSERT INTO orders_orderevent (order_id, " + ", ".join(columns) + ") "
            "SELECT id, " + ", ".join(["%s"] * len(columns)) + " FROM moved",
            params + event_params,
        )
        return cursor.rowcount == 1


def _refund(*, order: Order, status: str, remains: int | None, actor: User | None) -> None:
    from wallets.services import wallet_credit

    if status == Status.CANCELED:
        amount = order.charge
        memo = f"Refund for order #{order.pk} (Canceled)"
    else:
        amount = refund_for_remains(charge=order.charge, remains=remains or 0, quantity=order.quantity)
        memo = f"Refund for order #{order.pk} (Partial, {remains} of {order.quantity} not delivered)"
    if amount <= 0:
        return
    wallet_credit(
        user=order.user,
        amount=amount,
        kind="refund",
        idempotency_key=f"order:{order.pk}:refund",
        memo=memo,
        actor=actor,
        order_ref=order.pk,
    )


def refund_amount(*, order: Order) -> Decimal:
    """What the ledger must hold as this order's refund, by its status (for display)."""
    if order.status == Status.CANCELED:
        return order.charge
    if order.status == Status.PARTIAL:
        return refund_for_remains(charge=order.charge, remains=order.remains or 0, quantity=order.quantity)
    return money(Decimal("0"))


def order_profit(*, order: Order) -> Decimal | None:
    """What the panel keeps: the charge less its refund, less what the upstream takes for
    what it delivered (its own reported charge when that is more)."""
    if order.cost is None:
        return None
    refund = refund_amount(order=order)
    if order.status == Status.CANCELED:
        upstream = Decimal("0")
    elif order.status == Status.PARTIAL:
        upstream = order.cost - refund_for_remains(
            charge=order.cost, remains=order.remains or 0, quantity=order.quantity
        )
    else:
        upstream = order.cost
    if order.margin_flag and order.provider_charge is not None and order.provider is not None:
        upstream = max(upstream, money(order.provider_charge * order.provider.exchange_rate))
    return money(order.charge - refund - upstream)


# =========================================================================================
# Submission
# =========================================================================================
# Publishing gives up quickly when the broker is down: the row stays queued and the beat
# sweeper sends it later, so a customer's request never waits on (or fails with) the broker.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}


def _publish(task: Any, *, countdown: float | None, **kwargs: int) -> None:
    try:
        task.apply_async(kwargs=kwargs, countdown=countdown, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception:  # any broker failure: the sweeper re-sends from the database
        logger.warning("could not enqueue %s %s; the sweeper will retry", task.name, kwargs, exc_info=True)


def enqueue_submit(*, order_id: int, countdown: float | None = None) -> None:
    from . import tasks

    _publish(tasks.order_submit_task, countdown=countdown, order_id=order_id)


def _retry_delay(attempts: int) -> float:
    base = float(_setting("ORDERS_RETRY_BASE_SECONDS", 15))
    cap = float(_setting("ORDERS_RETRY_MAX_SECONDS", 900))
    return min(cap, base * (2 ** max(attempts - 1, 0)))


def order_submit(*, order_id: int) -> str:
    """Send one queued order to its provider, exactly once. Returns what happened.

    Safe to run any number of times for the same order, concurrently: only the caller
    that wins the `queued → sending` compare-and-set talks to the provider.
    """
    # The order row alone: its routes are read by service id, and the customer is needed
    # only for a refund (then read once).
    order = first_or_none(Order.objects.filter(pk=order_id))
    if order is None or order.state != State.QUEUED:
        return "skipped"
    now = timezone.now()
    tried = set(order.routes_tried or [])
    untried = [r for r in service_routes(service=order.service_id) if r.pk not in tried]
    usable = [r for r in untried if r.upstream.provider.is_usable]
    if not usable:
        if untried:
            # Only paused providers are left: wait for staff to resume one, keep the money.
            wait = timedelta(seconds=float(_setting("ORDERS_PAUSED_RETRY_SECONDS", 300)))
            Order.objects.filter(pk=order.pk, state=State.QUEUED).update(next_attempt_at=now + wait)
            return "waiting"
        if not order_transition(order=order, state=State.SENDING, reason="no route left to try"):
            return "skipped"
        note = order.customer_note or "No active providers for this service"
        order_transition(
            order=order,
            state=State.REJECTED,
            status=Status.CANCELED,
            reason="no active provider for this service: canceled and refunded",
            changes={"customer_note": note},
        )
        return "rejected"

    route = usable[0]
    upstream = route.upstream
    provider = upstream.provider
    attempts = order.attempts + 1
    cost = order_amount(
        rate=cost_per_1000(upstream_rate=upstream.rate, exchange_rate=provider.exchange_rate),
        quantity=order.quantity,
        billing=order.billing,
    )
    claimed = order_transition(
        order=order,
        state=State.SENDING,
        reason=f"sending to {provider.name} (attempt {attempts})",
        changes={
            "route": route,
            "provider": provider,
            "external_service_id": upstream.external_id,
            "provider_rate": upstream.rate,
            "cost": cost,
            "attempts": attempts,
            "sending_started_at": now,
            "next_attempt_at": None,
        },
    )
    if not claimed:
        return "skipped"

    # Outside any transaction: the network call may take up to the read timeout.
    try:
        client = provider_client(provider=provider)
        provider_order_id = client.add(order_ref=order.pk, service=upstream.external_id, **order.fields)
    except (NotSent, ValidationError) as exc:
        message = exc.message if isinstance(exc, NotSent) else "; ".join(exc.messages)
        return _submit_retry_later(order=order, reason=f"not sent to {provider.name}: {message}")
    except Rejected as exc:
        return _submit_rejected(order=order, route=route, provider=provider, exc=exc, others=len(untried) > 1)
    except UnknownOutcome as exc:
        _submit_unknown(order=order, reason=f"{provider.name} may have placed it: {exc.message}")
        return "unknown"
    except Exception as exc:
        # A bug or a time limit mid-call: the request may have gone out.
        logger.exception("order %s: unexpected error while sending", order.pk)
        _submit_unknown(order=order, reason=f"unexpected error while sending: {exc.__class__.__name__}")
        return "unknown"
    return _submit_accepted(order=order, provider=provider, provider_order_id=provider_order_id)


def _submit_accepted(*, order: Order, provider: Provider, provider_order_id: str) -> str:
    changes = {"provider_order_id": provider_order_id, "sent_at": timezone.now(), "customer_note": ""}
    reason = f"accepted by {provider.name} as #{provider_order_id}"
    try:
        if order_transition(order=order, state=State.SENT, reason=reason, changes=changes):
            return "sent"
        # The stuck-order sweeper moved it to unknown while we waited: we now know better.
        order.refresh_from_db()
        if order.state == State.UNKNOWN and order_transition(
            order=order, state=State.SENT, reason=reason + " (after the sending timeout)", changes=changes
        ):
            return "sent"
    except IntegrityError:
        _submit_unknown(
            order=order,
            reason=f"{provider.name} answered with order id {provider_order_id}, already used by another order",
        )
        return "unknown"
    logger.error("order %s: accepted as %s but the row moved to %s", order.pk, provider_order_id, order.state)
    return "lost"


def _submit_unknown(*, order: Order, reason: str) -> None:
    order.refresh_from_db()
    if order.state == State.SENDING:
        order_transition(order=order, state=State.UNKNOWN, reason=reason, changes={"sync_note": reason[:500]})


def _submit_retry_later(*, order: Order, reason: str) -> str:
    delay = _retry_delay(order.attempts)
    moved = order_transition(
        order=order,
        state=State.QUEUED,
        reason=f"{reason}; retrying in {int(delay)} s",
        changes={"next_attempt_at": timezone.now() + timedelta(seconds=delay), "sending_started_at": None},
    )
    if moved:
        enqueue_submit(order_id=order.pk, countdown=delay)
    return "retry"


def _submit_waiting_for_funds(*, order: Order, provider: Provider) -> str:
    """The provider cannot fund this order from our account. Only this order waits: it
    may be larger than our balance there while smaller orders still go through, so the
    provider is not paused for everyone. The customer may cancel it meanwhile."""
    base = float(_setting("ORDERS_FUNDS_RETRY_SECONDS", 300))
    delay = min(float(_setting("ORDERS_FUNDS_RETRY_MAX_SECONDS", 3600)), base * (2 ** max(order.attempts - 1, 0)))
    moved = order_transition(
        order=order,
        state=State.QUEUED,
        reason=f"{provider.name} has not enough funds on our account for it (cost {order.cost}); "
        f"retrying in {int(delay)} s",
        changes={
            "sending_started_at": None,
            "next_attempt_at": timezone.now() + timedelta(seconds=delay),
            "customer_note": "Waiting for the provider. You can cancel this order for a full refund.",
        },
    )
    if moved:
        enqueue_submit(order_id=order.pk, countdown=delay)
    # One alert per provider an hour, however many orders wait.
    if cache.add(f"orders:funds-alert:{provider.pk}", 1, timeout=3600):
        logger.warning("provider %s has not enough funds for order %s", provider.name, order.pk)
        mail_admins(
            f"Provider {provider.name}: not enough funds",
            f"Order #{order.pk} (cost {order.cost} {settings.PANEL_CURRENCY}) waits because our balance at "
            f"{provider.name} cannot pay for it. Orders it can pay for still go through. Add funds there; "
            "waiting orders are retried on their own.",
        )
    return "waiting_funds"


def _submit_rejected(*, order: Order, route: Route, provider: Provider, exc: Rejected, others: bool) -> str:
    if exc.message == protocol.ERR_NOT_ENOUGH_FUNDS:
        return _submit_waiting_for_funds(order=order, provider=provider)
    if exc.is_provider_side:
        # Our account at the provider is the problem, not the customer's order.
        provider_pause(provider=provider, reason=exc.message)
        moved = order_transition(
            order=order,
            state=State.QUEUED,
            reason=f"{provider.name} refused our account ({exc.message}); provider paused",
            changes={"sending_started_at": None, "next_attempt_at": timezone.now()},
        )
        if moved:
            enqueue_submit(order_id=order.pk)  # another route may take it; else it waits
        return "paused"
    tried = [*order.routes_tried, route.pk]
    if others:
        moved = order_transition(
            order=order,
            state=State.QUEUED,
            reason=f"rejected by {provider.name}: {exc.message}; trying the next route",
            changes={"routes_tried": tried, "sending_started_at": None, "next_attempt_at": timezone.now()},
        )
        if moved:
            enqueue_submit(order_id=order.pk)
        return "next_route"
    order_transition(
        order=order,
        state=State.REJECTED,
        status=Status.CANCELED,
        reason=f"rejected by {provider.name}: {exc.message}; canceled and refunded",
        changes={"routes_tried": tried, "customer_note": exc.message[:500], "sending_started_at": None},
    )
    return "rejected"


# =========================================================================================
# Sweeper: lost messages and crashed workers
# =========================================================================================
def orders_sweep(*, now: datetime | None = None, batch: int | None = None) -> dict[str, int]:
    """Re-enqueue queued orders that are due, and give up on orders stuck in `sending`."""
    now = now or timezone.now()
    batch = batch or int(_setting("ORDERS_SWEEP_BATCH", 500))
    lease = now + timedelta(seconds=float(_setting("ORDERS_SWEEP_LEASE_SECONDS", 300)))
    due_ids = list(
        Order.objects.filter(state=State.QUEUED, created_at__lte=now - timedelta(seconds=60))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:batch]
    )
    if due_ids:
        # A lease, so the next sweep does not enqueue the same orders while these wait.
        Order.objects.filter(pk__in=due_ids, state=State.QUEUED).update(next_attempt_at=lease)
        for order_id in due_ids:
            enqueue_submit(order_id=order_id)

    timeout = timedelta(seconds=float(_setting("ORDERS_SENDING_TIMEOUT_SECONDS", 600)))
    stuck = list(
        Order.objects.filter(state=State.SENDING, sending_started_at__lte=now - timeout).order_by("id")[:batch]
    )
    for order in stuck:
        order_transition(
            order=order,
            state=State.UNKNOWN,
            reason=f"no answer recorded {int(timeout.total_seconds())} s after sending began; the worker may have died mid-call",
            changes={"sync_note": "stuck in sending"},
        )

    refills = _requests_sweep(model=Refill, now=now, batch=batch, lease=lease, timeout=timeout, task="refill")
    cancels = _requests_sweep(model=CancelRequest, now=now, batch=batch, lease=lease, timeout=timeout, task="cancel")
    return {"requeued": len(due_ids), "unknown": len(stuck), "refills": refills, "cancels": cancels}


def _requests_sweep(
    *,
    model: type[Refill] | type[CancelRequest],
    now: datetime,
    batch: int,
    lease: datetime,
    timeout: timedelta,
    task: str,
) -> int:
    ids = list(
        model.objects.filter(state=RequestState.QUEUED, created_at__lte=now - timedelta(seconds=60))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("id")
        .values_list("id", flat=True)[:batch]
    )
    if ids:
        model.objects.filter(pk__in=ids, state=RequestState.QUEUED).update(next_attempt_at=lease)
        for pk in ids:
            (enqueue_refill if task == "refill" else enqueue_cancel)(pk=pk)
    model.objects.filter(state=RequestState.SENDING, sending_started_at__lte=now - timeout).update(
        state=RequestState.UNKNOWN, note="stuck in sending", updated_at=now
    )
    return len(ids)


# =========================================================================================
# Status sync
# =========================================================================================
def orders_sync_plan(*, now: datetime | None = None, max_chunks: int | None = None) -> list[tuple[int, list[int]]]:
    """Chunks of ≤100 active sent orders per provider, least recently checked first.

    The chosen orders get `last_checked_at = now` as a lease, so the next run moves on to
    the next-oldest ones instead of piling up the same ids while workers catch up.
    """
    now = now or timezone.now()
    max_chunks = max_chunks or int(_setting("ORDERS_SYNC_MAX_CHUNKS_PER_PROVIDER", 20))
    min_age = now - timedelta(seconds=float(_setting("ORDERS_SYNC_MIN_INTERVAL_SECONDS", 60)))
    plan: list[tuple[int, list[int]]] = []
    for provider_id in Provider.objects.order_by("id").values_list("id", flat=True):
        ids = list(
            Order.objects.filter(provider_id=provider_id, status__in=ACTIVE_STATUSES, state=State.SENT)
            .filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=min_age))
            .order_by(F("last_checked_at").asc(nulls_first=True), "id")
            .values_list("id", flat=True)[: max_chunks * protocol.MAX_IDS]
        )
        if not ids:
            continue
        Order.objects.filter(pk__any=ids).update(last_checked_at=now)
        plan.extend((provider_id, ids[i : i + protocol.MAX_IDS]) for i in range(0, len(ids), protocol.MAX_IDS))
    return plan


def order_sync_chunk(*, provider_id: int, order_ids: list[int]) -> dict[str, int]:
    """Ask the provider about ≤100 orders and apply each answer on its own.

    Most answers repeat the status we have: those are one compare-and-set UPDATE each
    (it matches only while the order is still sent and in the status we read). A new
    status takes the row-locked path through order_transition, which may refund.
    """
    counts = {"checked": 0, "changed": 0, "flagged": 0, "skipped": 0}
    provider = Provider.objects.filter(pk=provider_id).first()
    if provider is None:
        return counts
    orders = list(
        Order.objects.filter(pk__in=order_ids[: protocol.MAX_IDS], provider=provider, state=State.SENT)
        .exclude(status__in=TERMINAL_STATUSES)
        .exclude(provider_order_id__isnull=True)
        .only(*SYNC_FIELDS)
        .order_by("id")
    )
    if not orders:
        return counts
    try:
        replies = provider_client(provider=provider).statuses([str(o.provider_order_id) for o in orders])
    except (ProviderError, ValidationError) as exc:
        # A whole-request failure says nothing about any single order: change nothing.
        logger.warning("status sync of %s orders at %s failed: %s", len(orders), provider.name, exc)
        counts["skipped"] = len(orders)
        return counts
    answered = [(order, replies.get(str(order.provider_order_id))) for order in orders]
    # Replies that need more than a status compare (a charge above what was expected, a
    # subscription's own status words) go the single-order way.
    quick_ones = [(o, r) for o, r in answered if not _needs_care(order=o, reply=r, provider=provider)]
    quick = _sync_quick_many(quick_ones) if connection.vendor == "postgresql" else {}
    careful = {o.pk for o, _ in answered} - {o.pk for o, _ in quick_ones}
    for order, reply in answered:
        outcome = (
            quick.get(order.pk)
            or (None if order.pk in careful else _sync_quick(order=order, reply=reply))
            or _sync_one(order_id=order.pk, reply=reply, provider=provider)
        )
        counts[outcome] += 1
    return counts


SYNC_FIELDS = (
    "id",
    "provider_order_id",
    "status",
    "state",
    "quantity",
    "billing",
    "charge",
    "provider_rate",
    "service_type",
    "margin_flag",
)


def expected_provider_charge(*, order: Order) -> Decimal | None:
    """What the provider should charge for this order, in its own currency."""
    if order.provider_rate is None:
        return None
    return order_amount(rate=order.provider_rate, quantity=order.quantity, billing=order.billing)


# A provider's charge may differ from ours by its own rounding; beyond this it is not rounding.
MARGIN_TOLERANCE = Decimal("0.01")


def _margin_problem(*, order: Order, reply: OrderStatus, provider: Provider) -> tuple[str, bool] | None:
    """(why, is a loss) when the provider charged more than expected, else None."""
    expected = expected_provider_charge(order=order)
    if reply.charge is None or expected is None:
        return None
    paid_upstream = money(reply.charge * provider.exchange_rate)
    loss = paid_upstream > order.charge
    if not loss and reply.charge <= expected * (1 + MARGIN_TOLERANCE) + Decimal("0.00001"):
        return None
    why = f"provider charged {reply.charge} {reply.currency or ''}".rstrip() + f" where {expected} was expected"
    if loss:
        why += f"; that is {paid_upstream} {settings.PANEL_CURRENCY}, more than the {order.charge} the customer paid"
    return why, loss


def _needs_care(*, order: Order, reply: OrderStatus | ProviderError | None, provider: Provider) -> bool:
    if not isinstance(reply, OrderStatus):
        return False
    if order.service_type == SUBSCRIPTIONS:
        return True
    return not order.margin_flag and _margin_problem(order=order, reply=reply, provider=provider) is not None


def _reconcile(*, order: Order, reply: OrderStatus, provider: Provider) -> None:
    """Compare what the provider charged with what the panel expected. A loss flags the
    order, stops the service selling and tells staff; more than expected flags the order."""
    problem = _margin_problem(order=order, reply=reply, provider=provider)
    if problem is None or order.margin_flag:
        return
    why, loss = problem
    if not Order.objects.filter(pk=order.pk, margin_flag=False).update(margin_flag=True):
        return
    order.margin_flag = True
    OrderEvent.objects.create(order_id=order.pk, from_status=order.status, to_status=order.status, reason=why[:500])
    if not loss:
        logger.warning("order %s: %s", order.pk, why)
        return
    logger.error("order %s sold at a loss: %s", order.pk, why)
    Service.objects.filter(pk=order.service_id, is_enabled=True).update(
        is_enabled=False, disabled_reason=f"order #{order.pk} cost more upstream than it sold for"[:255]
    )
    mail_admins(
        f"Order #{order.pk} cost more upstream than the customer paid",
        f"{why}.\n\nService #{order.service_id} no longer sells until staff check its price "
        "(admin → Services: billing unit, markup) and enable it again.",
    )


def _sync_quick_many(answered: list[tuple[Order, OrderStatus | ProviderError | None]]) -> dict[int, str]:
    """_sync_quick for a whole chunk in one UPDATE (PostgreSQL): every reply that changes no
    status, each row compared-and-set on its own (still sent, still in the status read).
    Returns the outcome of each order it applied; the others go the single-order way."""
    now = timezone.now()
    rows: list[tuple[Any, ...]] = []
    outcome: dict[int, str] = {}
    for order, reply in answered:
        nonsense = _nonsense(order=order, reply=reply)
        if nonsense is not None:
            rows.append((order.pk, order.status, True, nonsense[:500], None, None, None))
            outcome[order.pk] = "flagged"
        elif isinstance(reply, OrderStatus) and reply.status == order.status:
            start_count = reply.start_count if reply.start_count is not None and reply.start_count >= 0 else None
            rows.append((order.pk, order.status, False, "", start_count, reply.remains, reply.charge))
            outcome[order.pk] = "checked"
    if not rows:
        return {}
    values = ", ".join(
        ["(%s::bigint, %s::varchar, %s::boolean, %s::varchar, %s::bigint, %s::bigint, %s::numeric)"] * len(rows)
    )
    sql = (  # only placeholders are joined in
        "UPDATE orders_order AS o SET sync_flag = v.flag, sync_note = v.note, "  # noqa: S608
        "start_count = COALESCE(v.start_count, o.start_count), remains = COALESCE(v.remains, o.remains), "
        "provider_charge = COALESCE(v.charge, o.provider_charge), last_checked_at = %s, updated_at = %s "
        "FROM (VALUES " + values + ") AS v(id, status, flag, note, start_count, remains, charge) "
        "WHERE o.id = v.id AND o.state = %s AND o.status = v.status RETURNING o.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, now, *(x for row in rows for x in row), State.SENT])
        applied = {pk for (pk,) in cursor.fetchall()}
    return {pk: result for pk, result in outcome.items() if pk in applied}


def _sync_changes(reply: OrderStatus, now: datetime) -> dict[str, Any]:
    changes: dict[str, Any] = {"last_checked_at": now, "updated_at": now, "sync_flag": False, "sync_note": ""}
    if reply.start_count is not None and reply.start_count >= 0:
        changes["start_count"] = reply.start_count
    if reply.remains is not None:
        changes["remains"] = reply.remains
    if reply.charge is not None:
        changes["provider_charge"] = reply.charge
    return changes


SUBSCRIPTION_WORDS = {"active": "Active", "paused": "Paused", "completed": "Completed", "expired": "Expired"}
SUBSCRIPTION_WORDS |= {"canceled": "Canceled", "cancelled": "Canceled", "pending": "Pending"}


def _outcome(*, order: Order, reply: OrderStatus, changes: dict[str, Any]) -> str:
    """The status this reply moves the order to, adjusting `changes` (remains, notes)."""
    status = reply.status
    if status == Status.CANCELED:
        # Canceled is always a full refund; odd remains are for staff to see, not a reason
        # to keep the customer's money.
        changes["remains"] = order.quantity
        if reply.remains is not None and reply.remains != order.quantity:
            changes["sync_flag"] = True
            changes["sync_note"] = (
                f"provider reported Canceled with remains {reply.remains} of {order.quantity}; refunded in full"
            )
    if order.service_type == SUBSCRIPTIONS:
        word = SUBSCRIPTION_WORDS.get(re.sub(r"\s+", " ", reply.raw_status.strip().lower()))
        if word:
            changes["provider_status"] = word
        if reply.remains is not None and not 0 <= reply.remains <= order.quantity:
            changes.pop("remains", None)
        if status in (Status.COMPLETED, Status.PARTIAL):
            undelivered = _subscription_undelivered(order=order, reply=reply)
            changes["remains"] = undelivered
            return Status.PARTIAL if undelivered else Status.COMPLETED
    return status


def _subscription_undelivered(*, order: Order, reply: OrderStatus) -> int:
    """Billed units a finished subscription did not deliver: from what the provider finally
    charged when it says (the surest measure), else from its remains."""
    expected = expected_provider_charge(order=order)
    remains = reply.remains if reply.remains is not None and 0 < reply.remains <= order.quantity else 0
    if reply.charge is None or not expected:
        return remains
    returned = expected - reply.charge
    if returned <= 0:
        return 0  # it kept everything it held: nothing comes back to the customer either
    if remains and refund_for_remains(charge=expected, remains=remains, quantity=order.quantity) <= returned:
        return remains  # its remains agree with what it gave back
    return int(order.quantity * returned / expected)  # down: never refund more than came back


def _sync_quick(*, order: Order, reply: OrderStatus | ProviderError | None) -> str | None:
    """Apply a reply that changes no status without a transaction; None when it does not
    apply (a new status, or the order moved since we read it)."""
    now = timezone.now()
    unchanged = Order.objects.filter(pk=order.pk, state=State.SENT, status=order.status)
    nonsense = _nonsense(order=order, reply=reply)
    if nonsense is not None:
        moved = unchanged.update(sync_flag=True, sync_note=nonsense[:500], last_checked_at=now, updated_at=now)
        return "flagged" if moved else None
    assert isinstance(reply, OrderStatus)
    if reply.status != order.status:
        return None
    return "checked" if unchanged.update(**_sync_changes(reply, now)) else None


def _sync_one(*, order_id: int, reply: OrderStatus | ProviderError | None, provider: Provider) -> str:
    now = timezone.now()
    with transaction.atomic():
        # The row lock makes two workers syncing the same order take turns; the second
        # sees the terminal status and does nothing, so the refund happens once.
        order = first_or_none(Order.objects.select_for_update().filter(pk=order_id))
        if order is None or order.state != State.SENT or order.is_terminal:
            return "skipped"
        nonsense = _nonsense(order=order, reply=reply)
        if nonsense is not None:
            Order.objects.filter(pk=order.pk).update(
                sync_flag=True, sync_note=nonsense[:500], last_checked_at=now, updated_at=now
            )
            return "flagged"
        assert isinstance(reply, OrderStatus)
        _reconcile(order=order, reply=reply, provider=provider)
        changes = _sync_changes(reply, now)
        status = _outcome(order=order, reply=reply, changes=changes)
        if status == order.status:
            Order.objects.filter(pk=order.pk).update(**changes)
            return "checked"
        changes.pop("updated_at")
        order_transition(order=order, status=status, reason=f"provider reports {reply.raw_status}", changes=changes)
        return "changed"


def _nonsense(*, order: Order, reply: OrderStatus | ProviderError | None) -> str | None:
    """Why this reply must not change the order, or None when it is usable."""
    if reply is None:
        return "the provider's reply did not mention this order"
    if isinstance(reply, Rejected):
        # "Incorrect order ID" is never a reason to refund: providers say it about orders
        # they later deliver (replica lag, a wrong account). A person decides.
        return f"provider says: {reply.message}"
    if isinstance(reply, ProviderError):
        return f"unreadable status: {reply.message}"
    if reply.status == Status.CANCELED:
        return None  # refunded in full whatever remains says (see _outcome)
    if order.service_type == SUBSCRIPTIONS:
        return None  # remains of a subscription are read only when it ends (see _outcome)
    if reply.remains is not None and (reply.remains < 0 or reply.remains > order.quantity):
        return f"provider reports remains {reply.remains} for a quantity of {order.quantity}"
    if reply.status == Status.PARTIAL and reply.remains is None:
        return "provider reports Partial without remains"
    if reply.status == Status.COMPLETED and reply.remains is not None and reply.remains >= order.quantity:
        return f"provider reports Completed with nothing delivered (remains {reply.remains} of {order.quantity})"
    return None


# =========================================================================================
# Refills
# =========================================================================================
def refill_refusal(*, order: Order, now: datetime | None = None, in_flight: bool | None = None) -> str | None:
    """Why this order cannot be refilled now, or None when it can. Lists pass `in_flight`
    (whether a refill is open) computed for a whole page at once."""
    now = now or timezone.now()
    if not order.service.refill:
        return "Refill is not available for this service"
    if order.status not in (Status.COMPLETED, Status.PARTIAL) or order.state != State.SENT:
        return "Refill is available only for completed orders"
    if order.completed_at is None or now > order.completed_at + timedelta(days=order.service.refill_days):
        return "The refill period for this order has ended"
    if in_flight is None:
        if refills_in_flight(order_ids=[order.pk], refused_too=False):
            return "A refill for this order is already in progress"
        in_flight = refills_in_flight(order_ids=[order.pk]) != set()
    if in_flight:
        return "The provider refused a refill of this order recently: ask again later or open a ticket"
    return None


def _refused_since() -> datetime:
    """A refused refill or cancel is not forwarded again before this (one provider call per
    click would otherwise be anyone's to repeat)."""
    return timezone.now() - timedelta(hours=float(_setting("ORDERS_REFUSED_REQUEST_COOLDOWN_HOURS", 24)))


def refills_in_flight(*, order_ids: list[int], refused_too: bool = True) -> set[int]:
    """The orders among these with a refill that is neither finished nor rejected (and, with
    `refused_too`, with a refill the provider refused recently)."""
    open_refills = Q(state__in=(RequestState.QUEUED, RequestState.SENDING, RequestState.SENT, RequestState.UNKNOWN))
    open_refills &= ~Q(status__in=REFILL_TERMINAL_STATUSES)
    blocking = open_refills
    if refused_too:
        blocking |= Q(updated_at__gte=_refused_since()) & (
            Q(state=RequestState.REJECTED) | Q(status=RefillStatus.REJECTED)
        )
    return set(Refill.objects.filter(blocking, order_id__in=order_ids).values_list("order_id", flat=True))


def cancels_pending(*, order_ids: list[int], refused_too: bool = True) -> set[int]:
    """The orders among these with a cancel request under way (and, with `refused_too`,
    with one the provider refused recently)."""
    blocking = ~Q(state=RequestState.REJECTED)
    if refused_too:
        blocking |= Q(state=RequestState.REJECTED, updated_at__gte=_refused_since())
    return set(CancelRequest.objects.filter(blocking, order_id__in=order_ids).values_list("order_id", flat=True))


def refill_request(*, user: User, order_id: int) -> Refill:
    with transaction.atomic():
        # Locked so two clicks cannot create two refills.
        order = first_or_none(Order.objects.select_for_update().filter(pk=order_id, user=user))
        if order is None:
            raise OrderError(protocol.ERR_INCORRECT_ORDER)
        refusal = refill_refusal(order=order)
        if refusal is not None:
            raise OrderError(refusal)
        assert order.provider_id is not None
        refill = Refill.objects.create(order=order, user=user, provider_id=order.provider_id)
        transaction.on_commit(partial(enqueue_refill, pk=refill.pk), robust=True)
    return refill


def enqueue_refill(*, pk: int, countdown: float | None = None) -> None:
    from . import tasks

    _publish(tasks.refill_submit_task, countdown=countdown, refill_id=pk)


def _request_move(obj: Refill | CancelRequest, *, old: str, new: str, **changes: Any) -> bool:
    if new not in REQUEST_STATE_TRANSITIONS[old]:
        raise ValueError(f"{obj}: {old} → {new} is not allowed")
    now = timezone.now()
    updated = type(obj).objects.filter(pk=obj.pk, state=old).update(state=new, updated_at=now, **changes)
    if updated == 1:
        obj.state = new
        for name, value in changes.items():
            setattr(obj, name, value)
    return updated == 1


def refill_submit(*, refill_id: int) -> str:
    refill = Refill.objects.select_related("order", "provider").filter(pk=refill_id).first()
    if refill is None or refill.state != RequestState.QUEUED:
        return "skipped"
    attempts = refill.attempts + 1
    if not _request_move(
        refill, old=RequestState.QUEUED, new=RequestState.SENDING, attempts=attempts, sending_started_at=timezone.now()
    ):
        return "skipped"
    try:
        provider_refill_id = provider_client(provider=refill.provider).refill(str(refill.order.provider_order_id))
    except (NotSent, ValidationError) as exc:
        delay = _retry_delay(attempts)
        note = exc.message if isinstance(exc, NotSent) else "; ".join(exc.messages)
        if _request_move(
            refill,
            old=RequestState.SENDING,
            new=RequestState.QUEUED,
            note=f"not sent: {note}"[:500],
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        ):
            enqueue_refill(pk=refill.pk, countdown=delay)
        return "retry"
    except Rejected as exc:
        _request_move(
            refill,
            old=RequestState.SENDING,
            new=RequestState.REJECTED,
            status=RefillStatus.REJECTED,
            note=exc.message[:500],
        )
        return "rejected"
    except Exception as exc:
        if not isinstance(exc, UnknownOutcome):
            logger.exception("refill %s: unexpected error", refill.pk)
        _request_move(refill, old=RequestState.SENDING, new=RequestState.UNKNOWN, note=str(exc)[:500])
        return "unknown"
    try:
        _request_move(refill, old=RequestState.SENDING, new=RequestState.SENT, provider_refill_id=provider_refill_id)
    except IntegrityError:
        _request_move(
            refill,
            old=RequestState.SENDING,
            new=RequestState.UNKNOWN,
            note=f"provider answered refill id {provider_refill_id}, already used",
        )
        return "unknown"
    return "sent"


def refills_sync_plan(*, now: datetime | None = None, max_chunks: int | None = None) -> list[tuple[int, list[int]]]:
    now = now or timezone.now()
    max_chunks = max_chunks or int(_setting("ORDERS_SYNC_MAX_CHUNKS_PER_PROVIDER", 20))
    min_age = now - timedelta(seconds=float(_setting("ORDERS_SYNC_MIN_INTERVAL_SECONDS", 60)))
    plan: list[tuple[int, list[int]]] = []
    for provider_id in Provider.objects.order_by("id").values_list("id", flat=True):
        ids = list(
            Refill.objects.filter(
                provider_id=provider_id,
                state=RequestState.SENT,
                status__in=(RefillStatus.PENDING, RefillStatus.IN_PROGRESS),
            )
            .filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=min_age))
            .order_by(F("last_checked_at").asc(nulls_first=True), "id")
            .values_list("id", flat=True)[: max_chunks * protocol.MAX_IDS]
        )
        if not ids:
            continue
        Refill.objects.filter(pk__in=ids).update(last_checked_at=now)
        plan.extend((provider_id, ids[i : i + protocol.MAX_IDS]) for i in range(0, len(ids), protocol.MAX_IDS))
    return plan


def refill_sync_chunk(*, provider_id: int, refill_ids: list[int]) -> dict[str, int]:
    counts = {"checked": 0, "changed": 0, "flagged": 0}
    provider = Provider.objects.filter(pk=provider_id).first()
    if provider is None:
        return counts
    found = list(
        Refill.objects.filter(
            pk__in=refill_ids[: protocol.MAX_IDS],
            provider=provider,
            state=RequestState.SENT,
            status__in=(RefillStatus.PENDING, RefillStatus.IN_PROGRESS),
        )
        .exclude(provider_refill_id__isnull=True)
        .values_list("id", "provider_refill_id")
    )
    rows = [(pk, str(rid)) for pk, rid in found]
    if not rows:
        return counts
    try:
        replies = provider_client(provider=provider).refill_statuses([rid for _, rid in rows])
    except (ProviderError, ValidationError) as exc:
        logger.warning("refill status sync at %s failed: %s", provider.name, exc)
        return counts
    now = timezone.now()
    for pk, rid in rows:
        reply = replies.get(rid)
        active = Refill.objects.filter(pk=pk, status__in=(RefillStatus.PENDING, RefillStatus.IN_PROGRESS))
        if not isinstance(reply, str):
            message = reply.message if isinstance(reply, ProviderError) else "missing from the reply"
            active.update(note=f"provider says: {message}"[:500], last_checked_at=now, updated_at=now)
            counts["flagged"] += 1
            continue
        # Terminal refill statuses never regress: the filter above is the guard.
        changed = active.exclude(status=reply).update(status=reply, last_checked_at=now, updated_at=now, note="")
        counts["changed" if changed else "checked"] += 1
    return counts


# =========================================================================================
# Cancel requests
# =========================================================================================
def cancel_refusal(*, order: Order, pending: bool | None = None) -> str | None:
    if order.is_terminal:
        return "This order can no longer be canceled"
    if order.state == State.QUEUED and (order.attempts or order.next_attempt_at):
        # Never sent and waiting (for provider funds, a paused provider, a retry): the
        # customer may take the money back, whatever the service allows upstream.
        return None
    if not order.service.cancel:
        return "Cancel is not available for this service"
    if order.state == State.QUEUED:
        return None
    if order.state != State.SENT or not order.provider_order_id:
        return "This order cannot be canceled right now"
    if pending is None:
        if cancels_pending(order_ids=[order.pk], refused_too=False):
            return "A cancel request for this order is already pending"
        pending = cancels_pending(order_ids=[order.pk]) != set()
    if pending:
        return "The provider refused to cancel this order recently: ask again later or open a ticket"
    return None


def cancel_request(*, user: User, order_id: int) -> CancelRequest | None:
    """Cancel an order: at once (with a refund) while it is still queued here, else by
    forwarding a request to the provider; the refund then follows its Canceled status.
    Returns the forwarded request, or None when the order was canceled here."""
    with transaction.atomic():
        order = first_or_none(Order.objects.select_for_update().filter(pk=order_id, user=user))
        if order is None:
            raise OrderError(protocol.ERR_INCORRECT_ORDER)
        refusal = cancel_refusal(order=order)
        if refusal is not None:
            raise OrderError(refusal)
        if order.state == State.QUEUED:
            # The compare-and-set loses against a worker that claimed it meanwhile.
            if not order_transition(
                order=order,
                state=State.CANCELED,
                status=Status.CANCELED,
                reason="canceled by the customer before it was sent",
                actor=user,
                changes={"customer_note": "Canceled at your request"},
            ):
                raise OrderError("This order cannot be canceled right now")
            return None
        assert order.provider_id is not None
        request = CancelRequest.objects.create(order=order, user=user, provider_id=order.provider_id)
        transaction.on_commit(partial(enqueue_cancel, pk=request.pk), robust=True)
    return request


def enqueue_cancel(*, pk: int, countdown: float | None = None) -> None:
    from . import tasks

    _publish(tasks.cancel_submit_task, countdown=countdown, cancel_id=pk)


def cancel_submit(*, cancel_id: int) -> str:
    request = CancelRequest.objects.select_related("order", "provider").filter(pk=cancel_id).first()
    if request is None or request.state != RequestState.QUEUED:
        return "skipped"
    attempts = request.attempts + 1
    if not _request_move(
        request, old=RequestState.QUEUED, new=RequestState.SENDING, attempts=attempts, sending_started_at=timezone.now()
    ):
        return "skipped"
    pid = str(request.order.provider_order_id)
    try:
        result = provider_client(provider=request.provider).cancel([pid]).get(pid)
    except (NotSent, ValidationError) as exc:
        delay = _retry_delay(attempts)
        note = exc.message if isinstance(exc, NotSent) else "; ".join(exc.messages)
        if _request_move(
            request,
            old=RequestState.SENDING,
            new=RequestState.QUEUED,
            note=f"not sent: {note}"[:500],
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        ):
            enqueue_cancel(pk=request.pk, countdown=delay)
        return "retry"
    except Rejected as exc:
        result = exc
    except Exception as exc:
        if not isinstance(exc, UnknownOutcome):
            logger.exception("cancel request %s: unexpected error", request.pk)
        _request_move(request, old=RequestState.SENDING, new=RequestState.UNKNOWN, note=str(exc)[:500])
        return "unknown"
    if result is True:
        _request_move(request, old=RequestState.SENDING, new=RequestState.SENT, note="")
        return "sent"
    if isinstance(result, Rejected):
        _request_move(request, old=RequestState.SENDING, new=RequestState.REJECTED, note=result.message[:500])
        return "rejected"
    _request_move(request, old=RequestState.SENDING, new=RequestState.UNKNOWN, note=str(result)[:500])
    return "unknown"


# =========================================================================================
# Staff actions (Django admin)
# =========================================================================================
def _locked(order_id: int) -> Order:
    order = first_or_none(Order.objects.select_for_update().filter(pk=order_id))
    if order is None:
        raise OrderError(protocol.ERR_INCORRECT_ORDER)
    return order


def order_resend(*, order_id: int, actor: User, confirm_unknown: bool = False) -> Order:
    """Send a queued order now; an `unknown` one only when staff confirm the provider
    never placed it (else the customer could be served, and we charged, twice)."""
    with transaction.atomic():
        order = _locked(order_id)
        if order.state == State.QUEUED:
            Order.objects.filter(pk=order.pk).update(next_attempt_at=timezone.now())
        elif order.state == State.UNKNOWN:
            if not confirm_unknown:
                raise OrderError(
                    f"Order #{order.pk} may already be placed at the provider: confirm it was never placed first"
                )
            order_transition(
                order=order,
                state=State.QUEUED,
                reason="staff confirmed it was never placed; resent",
                actor=actor,
                changes={"next_attempt_at": timezone.now(), "sync_note": ""},
            )
        else:
            raise OrderError(
                f"Order #{order.pk} is {order.get_state_display().lower()}: only queued or unknown orders can be resent"
            )
        transaction.on_commit(partial(enqueue_submit, order_id=order.pk), robust=True)
    return order


RESOLVE_PLACED = "placed"
RESOLVE_REQUEUE = "requeue"
RESOLVE_CANCEL = "cancel"


def order_resolve_unknown(*, order_id: int, actor: User, resolution: str, provider_order_id: str = "") -> Order:
    """Settle an order whose submission outcome is unknown, after staff asked the provider."""
    if resolution == RESOLVE_REQUEUE:
        return order_resend(order_id=order_id, actor=actor, confirm_unknown=True)
    with transaction.atomic():
        order = _locked(order_id)
        if order.state != State.UNKNOWN:
            raise OrderError(f"Order #{order.pk} is not in the unknown state")
        if resolution == RESOLVE_PLACED:
            pid = provider_order_id.strip()
            if not pid or len(pid) > 64:
                raise OrderError("Enter the provider's order id")
            try:
                with transaction.atomic():
                    order_transition(
                        order=order,
                        state=State.SENT,
                        reason=f"staff confirmed it was placed as #{pid}",
                        actor=actor,
                        changes={
                            "provider_order_id": pid,
                            "sent_at": timezone.now(),
                            "sync_note": "",
                            "sync_flag": False,
                        },
                    )
            except IntegrityError:
                raise OrderError(f"Provider order id {pid} is already attached to another order") from None
        elif resolution == RESOLVE_CANCEL:
            order_transition(
                order=order,
                state=State.CANCELED,
                status=Status.CANCELED,
                reason="staff confirmed it was never placed; canceled and refunded",
                actor=actor,
                changes={"customer_note": "Canceled and refunded"},
            )
        else:
            raise OrderError("Unknown resolution")
    return order


def order_cancel_refund(*, order_id: int, actor: User, reason: str = "") -> Order:
    """Cancel and refund the whole charge, whatever the provider does from here on."""
    with transaction.atomic():
        order = _locked(order_id)
        if order.is_terminal:
            raise OrderError(f"Order #{order.pk} is already {order.status}")
        if order.state == State.SENDING:
            raise OrderError(f"Order #{order.pk} is being sent right now: try again in a minute")
        state = State.CANCELED if order.state in (State.QUEUED, State.UNKNOWN) else None
        order_transition(
            order=order,
            status=Status.CANCELED,
            state=state,
            reason=f"staff canceled and refunded: {reason}" if reason else "staff canceled and refunded",
            actor=actor,
            changes={"customer_note": "Canceled and refunded"},
        )
    return order


def order_set_partial(*, order_id: int, actor: User, remains: int) -> Order:
    with transaction.atomic():
        order = _locked(order_id)
        if order.is_terminal or order.state != State.SENT:
            raise OrderError(f"Order #{order.pk} must be sent and active to be set Partial")
        if not 0 <= remains <= order.quantity:
            raise OrderError(f"Remains must be between 0 and {order.quantity}")
        order_transition(
            order=order,
            status=Status.PARTIAL,
            reason=f"staff set Partial, remains {remains}",
            actor=actor,
            changes={"remains": remains},
        )
    return order


def order_mark_completed(*, order_id: int, actor: User) -> Order:
    with transaction.atomic():
        order = _locked(order_id)
        if order.is_terminal or order.state != State.SENT:
            raise OrderError(f"Order #{order.pk} must be sent and active to be marked Completed")
        order_transition(
            order=order, status=Status.COMPLETED, reason="staff marked Completed", actor=actor, changes={"remains": 0}
        )
    return order
