from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from kernel.db import bulk_update_fast
from providers.client import ServiceInfo
from providers.models import Provider, UpstreamService
from providers.services import provider_client

from .models import Category, PanelSettings, PriceChange, Route, Service
from .pricing import cost_per_1000, decide_price_change, effective_markup
from .text_changes import text_changes_record

logger = logging.getLogger(__name__)

BATCH = 1000
REASON_NO_ROUTE = "No active route to a provider"
REASON_HELD_BELOW_COST = "Held price change: the current price is below the new cost"


class CatalogError(Exception):
    pass


def panel_settings_get() -> PanelSettings:
    row = PanelSettings.objects.order_by("pk").first()
    if row is None:
        from django.conf import settings

        row = PanelSettings.objects.create(default_markup_percent=settings.DEFAULT_MARKUP_PERCENT)
    return row


# --- Mirroring a provider's services ------------------------------------------------------
@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    repriced: int = 0
    held: int = 0
    disabled: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.created} new, {self.updated} changed, {self.removed} removed, {self.unchanged} unchanged; "
            f"{self.repriced} repriced, {self.held} held, {self.disabled} disabled"
        )


_MIRRORED = (
    "name",
    "type",
    "category",
    "rate",
    "min_quantity",
    "max_quantity",
    "refill",
    "cancel",
    "dripfeed",
    "description",
)


def _upstream_values(info: ServiceInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "type": info.type,
        "category": info.category,
        "rate": info.rate,
        "min_quantity": info.min_quantity,
        "max_quantity": info.max_quantity,
        "refill": info.refill,
        "cancel": info.cancel,
        "dripfeed": info.dripfeed,
        "description": info.description,
    }


def upstream_services_mirror(*, provider: Provider, services: Iterable[ServiceInfo], progress=None) -> SyncResult:  # type: ignore[no-untyped-def]
    """Make the provider's UpstreamService rows match its current list (new, changed, removed)."""
    result = SyncResult()
    now = timezone.now()
    seen: dict[str, ServiceInfo] = {}
    for info in services:
        seen.setdefault(info.service_id, info)
    existing = {u.external_id: u for u in UpstreamService.objects.filter(provider=provider)}
    to_create: list[UpstreamService] = []
    to_update: list[UpstreamService] = []
    texts_before: dict[int, dict[str, str]] = {}
    for external_id, info in seen.items():
        values = _upstream_values(info)
        row = existing.get(external_id)
        if row is None:
            to_create.append(UpstreamService(provider=provider, external_id=external_id, last_seen_at=now, **values))
            continue
        changed = row.is_removed or any(getattr(row, name) != value for name, value in values.items())
        if changed:
            texts_before[row.pk] = {"name": row.name, "description": row.description}
            for name, value in values.items():
                setattr(row, name, value)
            row.is_removed = False
            row.last_seen_at = now
            to_update.append(row)
        else:
            result.unchanged += 1
        if progress:
            progress(1)
    removed_ids = [row.pk for ext_id, row in existing.items() if ext_id not in seen and not row.is_removed]
    with transaction.atomic():
        UpstreamService.objects.bulk_create(to_create, batch_size=BATCH)
        bulk_update_fast(to_update, [*_MIRRORED, "is_removed", "last_seen_at"], batch_size=BATCH)
        text_changes_record(before=texts_before, rows=to_update)
        for start in range(0, len(removed_ids), BATCH):
            chunk = removed_ids[start : start + BATCH]
            UpstreamService.objects.filter(pk__in=chunk).update(is_removed=True)
            Route.objects.filter(upstream_id__in=chunk, is_enabled=True).update(is_enabled=False)
        Provider.objects.filter(pk=provider.pk).update(last_synced_at=now, last_sync_error="")
    result.created, result.updated, result.removed = len(to_create), len(to_update), len(removed_ids)
    return result


def provider_sync(*, provider: Provider, progress=None) -> SyncResult:  # type: ignore[no-untyped-def]
    """Fetch the provider's services, mirror them, and reprice what is sold through them."""
    try:
        services = provider_client(provider=provider).services()
    except Exception as exc:
        Provider.objects.filter(pk=provider.pk).update(last_sync_error=str(exc)[:1000])
        raise
    result = upstream_services_mirror(provider=provider, services=services, progress=progress)
    affected = Service.objects.filter(routes__upstream__provider=provider).distinct()
    priced = services_reprice(services=affected, reason=f"sync of {provider.name}")
    result.repriced, result.held, result.disabled = priced.repriced, priced.held, priced.disabled
    logger.info("provider %s synced: %s", provider.name, result.summary())
    return result


# --- Pricing ----------------------------------------------------------------------------------
def _primary_route(service: Service) -> Route | None:
    for route in service.routes.all():  # prefetched, ordered by priority
        upstream = route.upstream
        if route.is_enabled and not upstream.is_removed and upstream.provider.is_enabled:
            return route
    return None


def _reprice_one(
    service: Service, upstream: UpstreamService | None, row: PanelSettings, result: SyncResult
) -> PriceChange | None:
    """Apply DESIGN.md's price rules to one service in memory; the caller saves it.

    Returns the PriceChange to record, or None when the price did not change. Sets
    `service._dirty` when anything on the row changed.
    """
    old_price, old_cost = service.price, service.cost
    if upstream is None:
        if service.is_enabled:
            service.is_enabled, service.disabled_reason = False, REASON_NO_ROUTE
            service._dirty = True  # type: ignore[attr-defined]
            result.disabled += 1
        return None
    if service.disabled_reason == REASON_NO_ROUTE:
        # A route came back: the service sells again at its recomputed price.
        service.is_enabled, service.disabled_reason = True, ""
        service._dirty = True  # type: ignore[attr-defined]
    decision = decide_price_change(
        old_price=old_price,
        old_cost=old_cost,
        new_cost=cost_per_1000(upstream_rate=upstream.rate, exchange_rate=upstream.provider.exchange_rate),
        markup_percent=effective_markup(
            service_markup=service.markup_percent,
            category_markup=service.category.markup_percent,
            default_markup=row.default_markup_percent,
        ),
        fixed_price=service.fixed_price,
        jump_threshold_percent=row.price_jump_threshold_percent,
    )
    if decision.action == "unchanged":
        return None
    if decision.action == "hold":
        if service.held_price == decision.price and service.held_cost == decision.cost:
            return None
        service.held_price, service.held_cost = decision.price, decision.cost
        if old_price < decision.cost and service.is_enabled:
            service.is_enabled, service.disabled_reason = False, REASON_HELD_BELOW_COST
        result.held += 1
        status = PriceChange.Status.HELD
    elif decision.action == "disable":
        service.price, service.cost = decision.price, decision.cost
        service.is_enabled, service.disabled_reason = False, decision.reason[:255]
        result.disabled += 1
        status = PriceChange.Status.DISABLED
    else:
        service.price, service.cost = decision.price, decision.cost
        service.held_price = service.held_cost = None
        result.repriced += 1
        status = PriceChange.Status.APPLIED
    service._dirty = True  # type: ignore[attr-defined]
    return PriceChange(
        service=service,
        old_price=old_price,
        new_price=decision.price,
        old_cost=old_cost,
        new_cost=decision.cost,
        status=status,
        reason=decision.reason[:200],
    )


_PRICE_FIELDS = ["price", "cost", "held_price", "held_cost", "is_enabled", "disabled_reason", "updated_at"]


def services_reprice(*, services: QuerySet[Service], reason: str, actor: User | None = None) -> SyncResult:
    """Recompute cost and price of services from their primary route, following DESIGN.md's rules."""
    result = SyncResult()
    row = panel_settings_get()
    now = timezone.now()
    changed: list[Service] = []
    changes: list[PriceChange] = []
    for service in services.select_related("category").prefetch_related("routes__upstream__provider"):
        route = _primary_route(service)
        change = _reprice_one(service, route.upstream if route else None, row, result)
        if change is not None:
            change.reason = f"{change.reason} ({reason})"[:255]
            change.actor = actor
            changes.append(change)
        if getattr(service, "_dirty", False):
            service.updated_at = now
            changed.append(service)
    with transaction.atomic():
        bulk_update_fast(changed, _PRICE_FIELDS, batch_size=BATCH)
        PriceChange.objects.bulk_create(changes, batch_size=BATCH)
    return result


@transaction.atomic
def service_price_approve(*, service: Service, actor: User) -> None:
    service = Service.objects.select_for_update().get(pk=service.pk)
    if service.held_price is None or service.held_cost is None:
        raise CatalogError("This service has no held price change.")
    PriceChange.objects.create(
        service=service,
        old_price=service.price,
        new_price=service.held_price,
        old_cost=service.cost,
        new_cost=service.held_cost,
        status=PriceChange.Status.APPROVED,
        reason="held price change approved",
        actor=actor,
    )
    service.price, service.cost = service.held_price, service.held_cost
    service.held_price = service.held_cost = None
    if service.disabled_reason == REASON_HELD_BELOW_COST:
        service.is_enabled, service.disabled_reason = True, ""
    service.save()


@transaction.atomic
def service_price_reject(*, service: Service, actor: User) -> None:
    service = Service.objects.select_for_update().get(pk=service.pk)
    if service.held_price is None or service.held_cost is None:
        raise CatalogError("This service has no held price change.")
    PriceChange.objects.create(
        service=service,
        old_price=service.price,
        new_price=service.price,
        old_cost=service.cost,
        new_cost=service.held_cost,
        status=PriceChange.Status.REJECTED,
        reason="held price change rejected; price kept",
        actor=actor,
    )
    # The cost is real even if the price is kept: record it so later syncs compare to it.
    service.cost = service.held_cost
    service.held_price = service.held_cost = None
    service.save()


# --- Importing upstream services into the catalogue -----------------------------------------
def catalog_import_upstream(
    *,
    upstream_ids: Iterable[int],
    category: Category | None = None,
    markup_percent: Decimal | None = None,
    actor: User | None = None,
) -> list[Service]:
    """Create panel services for upstream services not sold yet, each with one route, priced.

    Without a category, each goes to a category named like its upstream category. Bulk
    inserts keep an import of thousands of services to seconds.
    """
    ids = list(upstream_ids)
    row = panel_settings_get()
    result = SyncResult()
    created: list[Service] = []
    with transaction.atomic():
        upstreams: list[UpstreamService] = []
        for start in range(0, len(ids), BATCH):
            upstreams += list(
                UpstreamService.objects.filter(pk__in=ids[start : start + BATCH], is_removed=False, routes__isnull=True)
                .select_related("provider")
                .order_by("pk")
            )
        categories: dict[str, Category] = {}
        changes: list[PriceChange] = []
        for upstream in upstreams:
            target = category
            if target is None:
                name = (upstream.category or "Other").strip()[:255] or "Other"
                if name not in categories:
                    categories[name], _ = Category.objects.get_or_create(name=name)
                target = categories[name]
            service = Service(
                category=target,
                name=upstream.name,
                description=upstream.description,
                type=upstream.type,
                min_quantity=max(upstream.min_quantity, 1),
                max_quantity=max(upstream.max_quantity, upstream.min_quantity, 1),
                refill=upstream.refill,
                cancel=upstream.cancel,
                dripfeed=upstream.dripfeed,
                markup_percent=markup_percent,
            )
            change = _reprice_one(service, upstream, row, result)
            if change is not None:
                change.reason, change.actor = "imported", actor
                changes.append(change)
            created.append(service)
        Service.objects.bulk_create(created, batch_size=BATCH)
        Route.objects.bulk_create(
            [Route(service=s, upstream=u, priority=1) for s, u in zip(created, upstreams, strict=True)],
            batch_size=BATCH,
        )
        for change in changes:
            change.service_id = change.service.pk
        PriceChange.objects.bulk_create(changes, batch_size=BATCH)
    return created


def category_reprice(*, category: Category, actor: User | None = None) -> SyncResult:
    return services_reprice(
        services=Service.objects.filter(category=category), reason="category markup changed", actor=actor
    )


def catalog_reprice_all(*, actor: User | None = None) -> SyncResult:
    return services_reprice(services=Service.objects.all(), reason="panel default markup changed", actor=actor)


@dataclass(frozen=True)
class BulkEdit:
    """What to change on many services at once; None leaves a field alone. `clear_markup`
    goes back to the category's (or the panel's) markup."""

    markup_percent: Decimal | None = None
    clear_markup: bool = False
    category: Category | None = None
    enabled: bool | None = None
    find: str = ""
    replace: str = ""
    description: str | None = None


def services_bulk_edit(*, services: QuerySet[Service], edit: BulkEdit, actor: User) -> SyncResult:
    """Change markup, category, selling state and texts of many services in one transaction,
    then price them again through the one pricing rule (held jumps and below-cost guards
    included). Returns the repricing's summary."""
    with transaction.atomic():
        chosen = list(services.select_for_update().order_by("pk"))
        for service in chosen:
            fields: list[str] = []
            if edit.clear_markup:
                service.markup_percent = None
                fields.append("markup_percent")
            elif edit.markup_percent is not None:
                service.markup_percent = edit.markup_percent
                fields.append("markup_percent")
            if edit.category is not None:
                service.category = edit.category
                fields.append("category")
            if edit.enabled is not None:
                service.is_enabled = edit.enabled
                service.disabled_reason = "" if edit.enabled else f"disabled by {actor.get_username()}"
                fields += ["is_enabled", "disabled_reason"]
            if edit.find:
                service.name = service.name.replace(edit.find, edit.replace)[:500]
                fields.append("name")
            if edit.description is not None:
                service.description = edit.description
                fields.append("description")
            if fields:
                service.save(update_fields=[*fields, "updated_at"])
        return services_reprice(
            services=Service.objects.filter(pk__in=[s.pk for s in chosen]), reason="bulk edit by staff", actor=actor
        )
