"""Status sync: batches of up to 100 orders per provider, refunds, margin reconciliation."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.mail import mail_admins
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog.models import Route, Service
from catalog.routing import DELIVERY, route_health_failure
from catalog.services import panel_settings_get
from kernel import protocol
from kernel.db import first_or_none
from kernel.money import money, refund_for_remains
from providers.client import OrderStatus, ProviderError, Rejected
from providers.models import Provider
from providers.services import provider_client
from siteconf.selectors import site_settings

from ..models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    Order,
    OrderEvent,
    State,
    Status,
)

if TYPE_CHECKING:
    pass
from .. import queries
from .base import SUBSCRIPTIONS, SyncOutcome, _setting
from .hooks import order_changes_record
from .parsing import order_amount
from .transitions import order_transition

logger = logging.getLogger(__name__)


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
    stalled = _stalls_record(answered=answered)
    if stalled:
        counts["stalled"] = stalled
    return counts


def _stalls_record(*, answered: list[tuple[Order, OrderStatus | ProviderError | None]]) -> int:
    """Orders their provider still reports pending `route_stall_minutes` after accepting them:
    each is marked stalled once and counted against its route's delivery. Reads the panel
    settings only when the chunk holds a pending order, writes only when one has stalled."""
    pending = [
        order
        for order, reply in answered
        if isinstance(reply, OrderStatus)
        and reply.status == Status.PENDING == order.status
        and order.stalled_at is None
        and order.sent_at is not None
        and order.route_id is not None
        and order.service_type != SUBSCRIPTIONS
    ]
    if not pending:
        return 0
    minutes = panel_settings_get().route_stall_minutes
    if not minutes:
        return 0
    now = timezone.now()
    by_route: dict[int, list[int]] = {}
    for order in pending:
        assert order.sent_at is not None and order.route_id is not None
        if order.sent_at <= now - timedelta(minutes=minutes):
            by_route.setdefault(order.route_id, []).append(order.pk)
    stalled = 0
    for route in Route.objects.filter(pk__in=list(by_route)).only("pk", "service_id").order_by("pk"):
        marked = Order.objects.filter(
            pk__in=by_route[route.pk], stalled_at__isnull=True, status=Status.PENDING, state=State.SENT
        ).update(stalled_at=now)
        if marked:
            stalled += marked
            route_health_failure(
                route=route,
                why=f"{marked} order(s) still pending {minutes} min after the provider accepted them",
                kind=DELIVERY,
                count=marked,
                now=now,
            )
    return stalled


SYNC_FIELDS = (
    "id",
    "user_id",
    "remains",
    "start_count",
    "provider_order_id",
    "status",
    "state",
    "quantity",
    "billing",
    "charge",
    "provider_rate",
    "service_type",
    "margin_flag",
    "route",
    "sent_at",
    "stalled_at",
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
        why += (
            f"; that is {paid_upstream} {site_settings().base_currency}, more than the {order.charge} the customer paid"
        )
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
    # Runs inside the sync's row-locked transaction: the mail (a network call) waits for the
    # commit, and is not sent if the transaction rolls back.
    transaction.on_commit(
        partial(
            mail_admins,
            f"Order #{order.pk} cost more upstream than the customer paid",
            f"{why}.\n\nService #{order.service_id} no longer sells until staff check its price "
            "(admin → Services: billing unit, markup) and enable it again.",
        ),
        robust=True,
    )


def _sync_quick_many(answered: list[tuple[Order, OrderStatus | ProviderError | None]]) -> dict[int, SyncOutcome]:
    """_sync_quick for a whole chunk in one UPDATE (PostgreSQL): every reply that changes no
    status, each row compared-and-set on its own (still sent, still in the status read).
    Returns the outcome of each order it applied; the others go the single-order way."""
    now = timezone.now()
    rows: list[tuple[Any, ...]] = []
    outcome: dict[int, SyncOutcome] = {}
    for order, reply in answered:
        nonsense = _nonsense(order=order, reply=reply)
        if nonsense is not None:
            rows.append((order.pk, order.status, True, nonsense[:500], None, None, None))
            outcome[order.pk] = SyncOutcome.FLAGGED
        elif isinstance(reply, OrderStatus) and reply.status == order.status:
            start_count = reply.start_count if reply.start_count is not None and reply.start_count >= 0 else None
            rows.append((order.pk, order.status, False, "", start_count, reply.remains, reply.charge))
            outcome[order.pk] = SyncOutcome.CHECKED
    if not rows:
        return {}
    with transaction.atomic():
        applied = queries.sync_unchanged_many(rows=rows, now=now)
        # Start counts and remains that moved: their webhook rows in the same transaction.
        order_changes_record(
            changes=[
                (order, _kept_values(reply))
                for order, reply in answered
                if order.pk in applied
                and outcome.get(order.pk) == SyncOutcome.CHECKED
                and isinstance(reply, OrderStatus)
            ]
        )
    return {pk: result for pk, result in outcome.items() if pk in applied}


def _kept_values(reply: OrderStatus) -> dict[str, Any]:
    """The start count and remains a quick sync writes (it keeps the stored value for None)."""
    changes = _sync_changes(reply, timezone.now())
    return {name: changes[name] for name in ("start_count", "remains") if name in changes}


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


def _sync_quick(*, order: Order, reply: OrderStatus | ProviderError | None) -> SyncOutcome | None:
    """Apply a reply that changes no status without a transaction; None when it does not
    apply (a new status, or the order moved since we read it)."""
    now = timezone.now()
    unchanged = Order.objects.filter(pk=order.pk, state=State.SENT, status=order.status)
    nonsense = _nonsense(order=order, reply=reply)
    if nonsense is not None:
        moved = unchanged.update(sync_flag=True, sync_note=nonsense[:500], last_checked_at=now, updated_at=now)
        return SyncOutcome.FLAGGED if moved else None
    assert isinstance(reply, OrderStatus)
    if reply.status != order.status:
        return None
    with transaction.atomic():
        if not unchanged.update(**_sync_changes(reply, now)):
            return None
        order_changes_record(changes=[(order, _kept_values(reply))])
    return SyncOutcome.CHECKED


def _sync_one(*, order_id: int, reply: OrderStatus | ProviderError | None, provider: Provider) -> SyncOutcome:
    now = timezone.now()
    with transaction.atomic():
        # The row lock makes two workers syncing the same order take turns; the second
        # sees the terminal status and does nothing, so the refund happens once.
        order = first_or_none(Order.objects.select_for_update().filter(pk=order_id))
        if order is None or order.state != State.SENT or order.is_terminal:
            return SyncOutcome.SKIPPED
        nonsense = _nonsense(order=order, reply=reply)
        if nonsense is not None:
            Order.objects.filter(pk=order.pk).update(
                sync_flag=True, sync_note=nonsense[:500], last_checked_at=now, updated_at=now
            )
            return SyncOutcome.FLAGGED
        assert isinstance(reply, OrderStatus)
        _reconcile(order=order, reply=reply, provider=provider)
        changes = _sync_changes(reply, now)
        status = _outcome(order=order, reply=reply, changes=changes)
        if status == order.status:
            Order.objects.filter(pk=order.pk).update(**changes)
            order_changes_record(changes=[(order, changes)])
            return SyncOutcome.CHECKED
        changes.pop("updated_at")
        order_transition(order=order, status=status, reason=f"provider reports {reply.raw_status}", changes=changes)
        return SyncOutcome.CHANGED


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
