"""Selectors for the staff dashboard (the admin's index): what needs a person, and how the
panel is doing today and over the last 30 days.

Everything is set-based and bounded by indexed columns so it stays fast with millions of
orders: orders are filtered on `(state, created_at)` (the `order_state_created` index, with
all states listed so the index applies to a date range alone), refunds are found through the
indexed `Entry.order_ref` from the first order id of the period (order ids grow with time),
payments through their indexed `created_at`, tickets through `(status, last_message_at)`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Case, Count, DecimalField, F, Max, Min, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDate
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import Service
from orders.models import CancelRequest, Order, Refill, RequestState, State, Status
from providers.models import Provider
from support.selectors import ticket_count_waiting, ticket_list_waiting
from wallets.models import Entry, Payment, Wallet

ZERO = Decimal("0")
MONEY: DecimalField = DecimalField(max_digits=18, decimal_places=5)
RECENT_DAYS = 7


@dataclass(frozen=True)
class AttentionItem:
    key: str
    label: str
    count: int
    admin_url: str  # an admin changelist path, filtered; "" when the admin has no such page
    rows: list[str] = field(default_factory=list)  # a few examples, plain text (escaped by the template)
    # Pending manual transfers, shown whole with their approve/reject buttons.
    payments: list[Payment] = field(default_factory=list)


@dataclass
class Totals:
    orders: int = 0
    revenue: Decimal = ZERO  # charges minus the refunds of those orders
    cost: Decimal = ZERO  # what the provider keeps for them
    profit: Decimal = ZERO


@dataclass(frozen=True)
class DayPoint:
    day: dt.date
    orders: int
    revenue: Decimal
    cost: Decimal
    profit: Decimal


@dataclass(frozen=True)
class Stats:
    today: Totals
    period: Totals
    days: list[DayPoint]


def _admin_url(name: str, query: str = "") -> str:
    try:
        return reverse(name) + (f"?{query}" if query else "")
    except NoReverseMatch:
        return ""


TRANSFERS_SHOWN = 10


def dashboard_attention(*, now: dt.datetime | None = None) -> list[AttentionItem]:
    """Counts (and a few examples) of everything waiting for a person: two queries an item at
    most (a count and a few rows), whatever the number of rows waiting."""
    now = now or timezone.now()
    recent = now - dt.timedelta(days=RECENT_DAYS)
    transfers = Payment.objects.filter(gateway="manual", status=Payment.Status.PENDING)
    unknown = Order.objects.filter(state=State.UNKNOWN)
    unknown_refills = Refill.objects.filter(state=RequestState.UNKNOWN)
    unknown_cancels = CancelRequest.objects.filter(state=RequestState.UNKNOWN)
    margin = Order.objects.filter(margin_flag=True)
    rejected = Order.objects.filter(state=State.REJECTED, created_at__gte=recent)
    held = Service.objects.filter(held_price__isnull=False)
    failed = Payment.objects.filter(status=Payment.Status.FAILED, created_at__gte=recent)
    providers = list(
        Provider.objects.filter(is_enabled=True)
        .filter(~Q(paused_reason="") | Q(balance__lt=F("low_balance_alert")))
        .order_by("name")[:20]
    )
    owing = Wallet.objects.filter(debt__gt=0)
    paused = [p for p in providers if p.paused_reason]
    low = [p for p in providers if not p.paused_reason]

    def examples(queryset, fmt) -> list[str]:  # type: ignore[no-untyped-def]
        return [fmt(row) for row in queryset[:5]]

    return [
        AttentionItem(
            "transfers",
            _("Manual transfers waiting for review"),
            transfers.count(),
            _admin_url("admin:wallets_payment_changelist", "gateway__exact=manual&status__exact=pending"),
            payments=list(transfers.select_related("user").order_by("id")[:TRANSFERS_SHOWN]),
        ),
        AttentionItem(
            "unknown",
            _("Orders with an unknown outcome (may have reached the provider)"),
            unknown.count(),
            _admin_url("admin:orders_order_changelist", "state__exact=unknown"),
            examples(unknown.order_by("created_at"), lambda o: f"#{o.pk} · {o.charge} · {o.created_at:%Y-%m-%d %H:%M}"),
        ),
        AttentionItem(
            "unknown_refills",
            _("Refill requests with an unknown outcome"),
            unknown_refills.count(),
            _admin_url("admin:orders_refill_changelist", "state__exact=unknown"),
            examples(unknown_refills.order_by("id"), lambda r: f"#{r.pk} · order #{r.order_id}"),
        ),
        AttentionItem(
            "unknown_cancels",
            _("Cancel requests with an unknown outcome"),
            unknown_cancels.count(),
            _admin_url("admin:orders_cancelrequest_changelist", "state__exact=unknown"),
            examples(unknown_cancels.order_by("id"), lambda r: f"#{r.pk} · order #{r.order_id}"),
        ),
        AttentionItem(
            "margin",
            _("Orders the provider charged more for than expected"),
            margin.count(),
            _admin_url("admin:orders_order_changelist", "margin_flag__exact=1"),
            examples(
                margin.order_by("-id"),
                lambda o: (
                    f"#{o.pk} · {_('cost')} {o.cost} · {_('charged')} {o.provider_charge} · {_('paid')} {o.charge}"
                ),
            ),
        ),
        AttentionItem(
            "rejected",
            _("Orders rejected by every route (last %(days)s days)") % {"days": RECENT_DAYS},
            rejected.count(),
            _admin_url("admin:orders_order_changelist", "state__exact=rejected"),
            examples(rejected.order_by("-created_at"), lambda o: f"#{o.pk} · {o.customer_note or 'rejected'}"),
        ),
        AttentionItem(
            "held_prices",
            _("Price changes held for approval"),
            held.count(),
            _admin_url("admin:catalog_service_changelist", "held_price__isnull=False"),
            examples(held.order_by("id"), lambda s: f"#{s.pk} {s.name}: {s.price} → {s.held_price}"),
        ),
        AttentionItem(
            "failed_payments",
            _("Failed payments (last %(days)s days)") % {"days": RECENT_DAYS},
            failed.count(),
            _admin_url("admin:wallets_payment_changelist", "status__exact=failed"),
            examples(failed.order_by("-id"), lambda p: f"#{p.pk} · {p.amount} {p.currency} · {p.note or p.gateway}"),
        ),
        AttentionItem(
            "owing",
            _("Customers owing money (a payment taken back after it was spent; their orders wait)"),
            owing.count(),
            _admin_url("admin:wallets_wallet_changelist", "owes=yes"),
            examples(
                owing.select_related("user").order_by("-debt", "user_id"),
                lambda w: f"{w.user} owes {w.debt:.2f}",
            ),
        ),
        AttentionItem(
            "tickets",
            _("Tickets waiting for an answer"),
            ticket_count_waiting(),
            _admin_url("admin:support_ticket_changelist", "status__exact=open"),
            [f"#{t.pk} {t.subject} ({t.user})" for t in ticket_list_waiting(limit=5)],
        ),
        AttentionItem(
            "providers_paused",
            _("Providers paused"),
            len(paused),
            _admin_url("admin:providers_provider_changelist", "attention=paused"),
            [f"{p.name}: {p.paused_reason}" for p in paused[:5]],
        ),
        AttentionItem(
            "providers_low",
            _("Providers low on balance"),
            len(low),
            _admin_url("admin:providers_provider_changelist", "attention=low"),
            [f"{p.name}: {p.balance} {p.balance_currency} (alert below {p.low_balance_alert})" for p in low[:5]],
        ),
    ]


def _upstream_cost():  # type: ignore[no-untyped-def]
    """What the provider keeps for an order: nothing if it never reached them or was canceled,
    the delivered share of a partial, else the snapshotted cost."""
    return Case(
        When(~Q(state__in=[State.SENT, State.UNKNOWN]), then=Value(ZERO)),
        When(status=Status.CANCELED, then=Value(ZERO)),
        When(
            status=Status.PARTIAL,
            remains__isnull=False,
            quantity__gt=0,
            then=Coalesce(F("cost"), Value(ZERO)) * (F("quantity") - F("remains")) / F("quantity"),
        ),
        default=Coalesce(F("cost"), Value(ZERO)),
        output_field=MONEY,
    )


# The finished days of the chart are read from the cache (the beat task dashboard_refresh
# computes them every few minutes); only today is counted on each view.
PAST_DAYS_TTL_SECONDS = 15 * 60


def _per_day(*, start: dt.datetime, end: dt.datetime | None, tz: dt.tzinfo) -> dict[dt.date, DayPoint]:
    """Orders, revenue (net of refunds), upstream cost and profit per day of placing, for the
    orders placed from `start` to `end` (open-ended when None)."""
    # Listing every state lets the (state, created_at) index serve a pure date range.
    orders = Order.objects.filter(state__in=State.values, created_at__gte=start)
    if end is not None:
        orders = orders.filter(created_at__lt=end)
    per_day = {
        row["day"]: row
        for row in orders.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(
            n=Count("id"), charge=Sum("charge"), cost=Sum(_upstream_cost()), first_id=Min("id"), last_id=Max("id")
        )
        .order_by()
    }
    refunds: dict[dt.date, Decimal] = {}
    first_ids = [row["first_id"] for row in per_day.values() if row["first_id"] is not None]
    if first_ids:
        placed = Order.objects.filter(pk=OuterRef("order_ref")).values("created_at")[:1]
        entries = Entry.objects.filter(kind=Entry.Kind.REFUND, order_ref__gte=min(first_ids))
        if end is not None:
            entries = entries.filter(order_ref__lte=max(row["last_id"] for row in per_day.values()))
        for row in (
            entries.annotate(day=TruncDate(Subquery(placed), tzinfo=tz))
            .values("day")
            .annotate(total=Sum("amount"))
            .order_by()
        ):
            if row["day"] is not None:
                refunds[row["day"]] = abs(row["total"] or ZERO)
    first, last = timezone.localtime(start, tz).date(), (timezone.localtime(end, tz).date() if end else None)
    points = {}
    for day in set(per_day) | set(refunds):
        if day < first or (last is not None and day >= last):
            continue  # a refund of an order placed outside the range (ids are not dates)
        row = per_day.get(day, {})
        revenue = (row.get("charge") or ZERO) - refunds.get(day, ZERO)
        cost = (row.get("cost") or ZERO).quantize(Decimal("0.00001"))
        points[day] = DayPoint(day, row.get("n", 0), revenue, cost, revenue - cost)
    return points


def _day_start(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), tz)


def _past_days_key(first_day: dt.date, today: dt.date, tz: dt.tzinfo) -> str:
    return f"dashboard:days:{tz}:{first_day.isoformat()}:{today.isoformat()}"


def dashboard_past_days(
    *, first_day: dt.date, today: dt.date, tz: dt.tzinfo, refresh: bool = False
) -> dict[dt.date, DayPoint]:
    """The figures of the days before today (cached; `refresh` computes them again)."""
    key = _past_days_key(first_day, today, tz)
    points = None if refresh else cache.get(key)
    if not isinstance(points, dict):
        points = _per_day(start=_day_start(first_day, tz), end=_day_start(today, tz), tz=tz)
        cache.set(key, points, PAST_DAYS_TTL_SECONDS)
    return points


def dashboard_refresh(*, now: dt.datetime | None = None, days: int = 30) -> None:
    """Compute the finished days of the chart again (the beat task, every few minutes), so
    that no staff view pays for a month of orders."""
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    today = timezone.localtime(now, tz).date()
    dashboard_past_days(first_day=today - dt.timedelta(days=days - 1), today=today, tz=tz, refresh=True)


def dashboard_stats(*, now: dt.datetime | None = None, days: int = 30) -> Stats:
    """Per-day orders, revenue, upstream cost and profit for the orders placed in the last
    `days` days (in the current time zone), with today's and the period's totals. Today is
    counted live; the days before come from dashboard_past_days (at most a few minutes old:
    late refunds of an earlier day's orders show up at the next refresh)."""
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    today = timezone.localtime(now, tz).date()
    first_day = today - dt.timedelta(days=days - 1)
    points = dict(dashboard_past_days(first_day=first_day, today=today, tz=tz))
    points.update(_per_day(start=_day_start(today, tz), end=None, tz=tz))

    series: list[DayPoint] = []
    period, today_totals = Totals(), Totals()
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        point = points.get(day) or DayPoint(day, 0, ZERO, ZERO, ZERO)
        series.append(point)
        for totals in (period, today_totals) if day == today else (period,):
            totals.orders += point.orders
            totals.revenue += point.revenue
            totals.cost += point.cost
            totals.profit += point.profit
    return Stats(today=today_totals, period=period, days=series)


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    revenue_y: float
    revenue_h: float
    profit_y: float
    profit_h: float
    label: str
    tick: str  # the day shown under the bar, every few bars


def chart_bars(*, days: list[DayPoint], width: int = 720, height: int = 180) -> tuple[list[Bar], Decimal]:
    """Bar geometry for the server-rendered SVG chart: revenue, with profit in front of it."""
    top = max([p.revenue for p in days] + [p.profit for p in days] + [ZERO])
    scale = float(top) if top > 0 else 1.0
    slot = width / max(len(days), 1)
    bars = []
    for i, p in enumerate(days):
        rev_h = max(float(p.revenue), 0.0) / scale * height
        prof_h = max(float(p.profit), 0.0) / scale * height
        bars.append(
            Bar(
                x=round(i * slot + slot * 0.15, 2),
                width=round(slot * 0.7, 2),
                revenue_y=round(height - rev_h, 2),
                revenue_h=round(rev_h, 2),
                profit_y=round(height - prof_h, 2),
                profit_h=round(prof_h, 2),
                label=f"{p.day:%Y-%m-%d}: {p.orders} orders, revenue {p.revenue:.2f}, profit {p.profit:.2f}",
                tick=f"{p.day:%d.%m}" if i % 5 == 0 or i == len(days) - 1 else "",
            )
        )
    return bars, top
