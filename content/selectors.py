from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import F, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from catalog.models import PriceChange, Service
from kernel.numbers import int_or_none

from .models import NewsPost, Page


def page_get(*, slug: str) -> Page | None:
    return Page.objects.filter(slug=slug).first()


def news_list() -> QuerySet[NewsPost]:
    return NewsPost.objects.filter(is_published=True, published_at__lte=timezone.now())


def news_get(*, pk: int) -> NewsPost:
    return get_object_or_404(news_list(), pk=pk)


def announcement_current() -> NewsPost | None:
    return news_list().filter(is_announcement=True).only("id", "title", "published_at").first()


# --- Service updates: the catalogue's history as customers read it ----------------------------
NEW, PRICE, REMOVED = "new", "price", "removed"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Ties on the same instant are ordered by kind, then id, so every item has one place.
_RANK = {NEW: 3, PRICE: 2, REMOVED: 1}
PRICE_STATUSES = (PriceChange.Status.APPLIED, PriceChange.Status.APPROVED)


@dataclass(frozen=True)
class Update:
    kind: str
    at: datetime
    ref: int  # the service's id (new, removed) or the price change's (price)
    service: Service
    old_price: Decimal | None = None
    new_price: Decimal | None = None

    @property
    def cursor(self) -> str:
        micros = (self.at - EPOCH) // timedelta(microseconds=1)
        return f"{micros}_{_RANK[self.kind]}_{self.ref}"


@dataclass(frozen=True)
class Cursor:
    at: datetime
    rank: int
    ref: int


def cursor_parse(text: str | None) -> Cursor | None:
    """The position after which a page starts ("<microseconds>_<rank>_<id>"), None when bad."""
    parts = (text or "").split("_")
    if len(parts) != 3:
        return None
    micros, rank, ref = (int_or_none(p, max_digits=20) for p in parts)
    if micros is None or rank is None or ref is None:
        return None
    try:
        at = EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None
    return Cursor(at=at, rank=rank, ref=ref)


def _before(field: str, kind: str, cursor: Cursor | None) -> Q:
    """Rows that come after `cursor` in newest-first order, for one kind."""
    if cursor is None:
        return Q()
    rank = _RANK[kind]
    same_instant = Q(**{field: cursor.at}) & (Q(pk__lt=cursor.ref) if rank == cursor.rank else Q())
    if rank > cursor.rank:
        same_instant = Q(pk__in=[])  # this kind came first at that instant: all shown already
    return Q(**{f"{field}__lt": cursor.at}) | same_instant


def service_updates(*, after: Cursor | None = None, limit: int = 25) -> tuple[list[Update], Update | None]:
    """A page of updates, newest first, and the last one when another page follows.

    Each of the three kinds reads at most `limit + 1` rows by index from where the page starts,
    so a deep page costs what the first one does."""
    for_sale = Q(is_enabled=True, category__is_enabled=True)
    new = (
        Service.objects.filter(for_sale)
        .filter(_before("created_at", NEW, after))
        .select_related("category")
        .order_by("-created_at", "-id")[: limit + 1]
    )
    prices = (
        PriceChange.objects.filter(status__in=PRICE_STATUSES, old_price__gt=0)
        .exclude(old_price=F("new_price"))
        .filter(service__is_enabled=True, service__category__is_enabled=True)
        .filter(_before("created_at", PRICE, after))
        .select_related("service__category")
        .order_by("-created_at", "-id")[: limit + 1]
    )
    # The catalogue keeps no log of a service being switched off: its last change is when.
    removed = (
        Service.objects.filter(~for_sale)
        .filter(_before("updated_at", REMOVED, after))
        .select_related("category")
        .order_by("-updated_at", "-id")[: limit + 1]
    )
    items = [Update(kind=NEW, at=s.created_at, ref=s.pk, service=s, new_price=s.price) for s in new]
    items += [
        Update(kind=PRICE, at=c.created_at, ref=c.pk, service=c.service, old_price=c.old_price, new_price=c.new_price)
        for c in prices
    ]
    items += [Update(kind=REMOVED, at=s.updated_at, ref=s.pk, service=s) for s in removed]
    items.sort(key=lambda u: (u.at, _RANK[u.kind], u.ref), reverse=True)
    page = items[:limit]
    more = len(items) > limit
    return page, (page[-1] if more and page else None)
