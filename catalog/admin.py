from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from providers.admin import ProviderAdmin, UpstreamServiceAdmin
from providers.client import ProviderError
from providers.models import Provider, UpstreamService

from .admin_customers import set_custom_rate
from .models import Category, PanelSettings, PriceChange, QualityFigures, Route, Service
from .quality import quality_of
from .services import (
    BulkEdit,
    CatalogError,
    catalog_import_upstream,
    catalog_reprice_all,
    category_reprice,
    provider_sync,
    service_price_approve,
    service_price_reject,
    services_bulk_edit,
    services_reprice,
)
from .templatetags.catalog_quality import duration


@admin.register(PanelSettings)
class PanelSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "default_markup_percent", "price_jump_threshold_percent")
    fieldsets = (
        (_("Pricing"), {"fields": ("default_markup_percent", "price_jump_threshold_percent")}),
        (
            _("Routing: demotion and recovery of routes"),
            {
                "fields": (
                    "route_failure_window_minutes",
                    "route_min_attempts",
                    "route_failure_percent",
                    "route_undelivered_percent",
                    "route_stall_minutes",
                    "route_probe_minutes",
                )
            },
        ),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not PanelSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PanelSettings, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        result = catalog_reprice_all(actor=request.user)  # type: ignore[arg-type]
        self.message_user(request, f"Catalogue repriced: {result.summary()}")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "sort_order", "markup_percent", "is_enabled")
    list_editable = ("sort_order", "is_enabled")
    search_fields = ("name",)

    def save_model(self, request: HttpRequest, obj: Category, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if "markup_percent" in form.changed_data:
            result = category_reprice(category=obj, actor=request.user)  # type: ignore[arg-type]
            self.message_user(request, f"Services of {obj.name} repriced: {result.summary()}")


def readable(value: Any, decimals: int) -> str:
    return "—" if value is None else f"{value:.{decimals}f}"


def quality_text(figures: QualityFigures | None) -> str:
    """One line of measured figures for staff (shown whatever the sample size)."""
    if figures is None or (not figures.finished and not figures.failures):
        return "no orders in the window"
    parts = [
        f"{figures.finished} finished",
        f"completed {readable(figures.completed_share, 1)}%",
        f"partial {readable(figures.partial_share, 1)}%",
        f"canceled {readable(figures.canceled_share, 1)}%",
        f"start p50 {duration(figures.start_p50)} / p90 {duration(figures.start_p90)}",
        f"per 1000 p50 {duration(figures.per1000_p50)} / p90 {duration(figures.per1000_p90)}",
        f"refills ok {readable(figures.refill_share, 1)}% of {figures.refills}",
        f"provider failures {readable(figures.failure_share, 1)}% ({figures.failures})",
    ]
    return " · ".join(parts)


def health_text(route: Route) -> str:
    if route.demoted_at is not None:
        probe = f"{route.probe_after:%H:%M}" if route.probe_after else "—"
        return f"DEMOTED since {route.demoted_at:%Y-%m-%d %H:%M} ({route.demoted_reason}); next probe {probe}"
    now = timezone.now()
    counts = []
    if route.send_until is not None and route.send_until > now:
        counts.append(f"{route.send_failures} of {route.send_attempts} sends failed")
    if route.delivery_until is not None and route.delivery_until > now:
        counts.append(f"{route.delivery_failures} of {route.delivery_outcomes} orders not delivered")
    return "; ".join(counts) + " in the current window" if counts else "healthy"


class RouteInline(admin.TabularInline):
    model = Route
    extra = 0
    raw_id_fields = ("upstream",)
    fields = ("priority", "upstream", "upstream_rate", "is_enabled", "health", "measured")
    readonly_fields = ("upstream_rate", "health", "measured")

    @admin.display(description=_("Health"))
    def health(self, obj: Route) -> str:
        return health_text(obj) if obj.pk else "—"

    @admin.display(description=_("Measured (30 days)"))
    def measured(self, obj: Route) -> str:
        return quality_text(quality_of(obj)) if obj.pk else "—"

    @admin.display(description="Upstream rate")
    def upstream_rate(self, obj: Route) -> str:
        if not obj.pk:
            return "—"
        removed = " (removed upstream)" if obj.upstream.is_removed else ""
        return f"{obj.upstream.rate} {obj.upstream.provider.currency}{removed}"


class PriceChangeInline(admin.TabularInline):
    model = PriceChange
    extra = 0
    can_delete = False
    fields = ("created_at", "status", "old_price", "new_price", "old_cost", "new_cost", "reason", "actor")
    readonly_fields = fields
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[PriceChange]:
        return super().get_queryset(request).select_related("actor")


class HeldFilter(admin.SimpleListFilter):
    title = "price change"
    parameter_name = "held"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Held for approval")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Service]) -> QuerySet[Service]:
        if self.value() == "yes":
            return queryset.filter(held_price__isnull=False)
        return queryset


class BulkEditForm(forms.Form):
    ENABLED = [("", "Leave as it is"), ("on", "Enable (sell)"), ("off", "Disable (stop selling)")]

    markup_percent = forms.DecimalField(
        required=False, max_digits=8, decimal_places=2, min_value=-99, label="Markup %", help_text="Empty: unchanged."
    )
    clear_markup = forms.BooleanField(required=False, label="Use the category's markup instead")
    category = forms.ModelChoiceField(queryset=Category.objects.all(), required=False, empty_label="Unchanged")
    enabled = forms.ChoiceField(choices=ENABLED, required=False, label="Selling")
    find = forms.CharField(required=False, max_length=200, label="In names, replace")
    replace = forms.CharField(required=False, max_length=200, label="with")
    set_description = forms.BooleanField(required=False, label="Set the description of every selected service")
    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 4}))

    def edit(self) -> BulkEdit:
        data = self.cleaned_data
        return BulkEdit(
            markup_percent=data["markup_percent"],
            clear_markup=data["clear_markup"],
            category=data["category"],
            enabled={"on": True, "off": False}.get(data["enabled"] or ""),
            find=data["find"],
            replace=data["replace"],
            description=data["description"] if data["set_description"] else None,
        )


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    # Chosen to fit 1280 px with the filters: cost always shows; the whole name is its tooltip.
    list_display = (
        "id",
        "short_name",
        "category",
        "position",
        "type",
        "price",
        "cost",
        "held_price",
        "min_quantity",
        "max_quantity",
        "is_enabled",
    )
    list_filter = ("is_enabled", HeldFilter, "category", "type", "refill", "cancel", "dripfeed")
    search_fields = ("name", "=id")
    readonly_fields = (
        "price",
        "cost",
        "held_price",
        "held_cost",
        "disabled_reason",
        "created_at",
        "updated_at",
        "measured",
    )
    fieldsets = (
        (None, {"fields": ("category", "position", "name", "description", "type", "is_enabled", "disabled_reason")}),
        ("Limits", {"fields": ("min_quantity", "max_quantity", "average_time_minutes", "allow_duplicate_link")}),
        ("Options", {"fields": ("refill", "refill_days", "cancel", "dripfeed")}),
        (
            "Pricing",
            {
                "fields": (
                    "billing_unit",
                    "max_posts",
                    "markup_percent",
                    "fixed_price",
                    "price",
                    "cost",
                    "held_price",
                    "held_cost",
                )
            },
        ),
        (_("Routing and measured quality"), {"fields": ("routing_policy", "routing_max_cost", "measured")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )
    inlines = (RouteInline, PriceChangeInline)

    @admin.display(description=_("Measured (30 days)"))
    def measured(self, obj: Service) -> str:
        return quality_text(quality_of(obj)) if obj.pk else "—"

    actions = ("bulk_edit", "approve_held", "reject_held", "reprice", set_custom_rate)
    list_select_related = ("category",)
    list_editable = ("position",)

    class Media:
        css = {"all": ("admin_lists.css",)}

    @admin.display(description="Name", ordering="name")
    def short_name(self, obj: Service) -> str:
        name = obj.name
        return format_html('<span title="{}">{}</span>', name, name if len(name) <= 50 else f"{name[:48]}…")

    def has_add_custom_rate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("catalog.add_customrate")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Markup, fixed price or routes may have changed: price follows through the one rule.
        staff = request.user
        assert isinstance(staff, User)
        services_reprice(services=Service.objects.filter(pk=form.instance.pk), reason="edited by staff", actor=staff)

    def has_approve_price_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("catalog.approve_price")

    def has_reprice_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("catalog.reprice_service")

    @admin.action(description="Edit selected services (markup, category, selling, texts)…", permissions=["change"])
    def bulk_edit(self, request: HttpRequest, queryset: QuerySet[Service]) -> HttpResponse | None:
        form = BulkEditForm(request.POST if request.POST.get("apply") == "1" else None)
        if form.is_bound and form.is_valid():
            staff = request.user
            assert isinstance(staff, User)
            result = services_bulk_edit(services=queryset, edit=form.edit(), actor=staff)
            self.message_user(request, f"{queryset.count()} service(s) edited. {result.summary()}")
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Edit services in bulk",
            "services": list(queryset.order_by("pk")[:500]),
            "count": queryset.count(),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return render(request, "admin/catalog/bulk_edit_services.html", context)

    @admin.action(description="Approve held price changes", permissions=["approve_price"])
    def approve_held(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        done = 0
        for service in queryset.filter(held_price__isnull=False):
            service_price_approve(service=service, actor=request.user)  # type: ignore[arg-type]
            done += 1
        self.message_user(request, f"{done} held price change(s) approved.")

    @admin.action(description="Reject held price changes (keep current price)", permissions=["approve_price"])
    def reject_held(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        done = 0
        for service in queryset.filter(held_price__isnull=False):
            try:
                service_price_reject(service=service, actor=request.user)  # type: ignore[arg-type]
            except CatalogError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            done += 1
        self.message_user(request, f"{done} held price change(s) rejected.")

    @admin.action(description="Recompute prices", permissions=["reprice"])
    def reprice(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        result = services_reprice(services=queryset, reason="repriced by staff", actor=request.user)  # type: ignore[arg-type]
        self.message_user(request, result.summary())


@admin.register(PriceChange)
class PriceChangeAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "service",
        "status",
        "old_price",
        "new_price",
        "old_cost",
        "new_cost",
        "reason",
        "actor",
    )
    list_filter = ("status",)
    search_fields = ("=service__id", "service__name", "reason")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in PriceChange._meta.fields]
    list_select_related = ("service", "actor")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the price history is kept


# --- The providers' pages, with the catalogue's actions ----------------------------------------
# Syncing a provider's services and importing them write the catalogue, so the catalogue adds
# those actions to the providers' admin pages (providers knows nothing of the catalogue).
admin.site.unregister(Provider)
admin.site.unregister(UpstreamService)


@admin.register(Provider)
class ProviderWithSyncAdmin(ProviderAdmin):
    actions = ("test_connection", "sync_services", "resume")
    readonly_fields = (*ProviderAdmin.readonly_fields, "routes_measured")  # type: ignore[assignment]

    @admin.display(description=_("Routes: health and measured quality (30 days)"))
    def routes_measured(self, obj: Provider) -> str:
        routes = Route.objects.filter(upstream__provider=obj).select_related("service", "quality").order_by("id")[:50]
        return (
            format_html_join(
                "",
                "<p>route {} (service #{} {}): {} — {}</p>",
                ((r.pk, r.service_id, r.service.name, health_text(r), quality_text(quality_of(r))) for r in routes),
            )
            or "—"
        )

    @admin.action(description="Sync services now", permissions=["sync"])
    def sync_services(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            try:
                result = provider_sync(provider=provider)
            except (ProviderError, ValidationError) as exc:
                self.message_user(request, f"{provider.name}: sync failed — {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{provider.name}: {result.summary()}")


class ImportForm(forms.Form):
    category = forms.ModelChoiceField(
        queryset=Category.objects.all(),
        required=False,
        help_text="Leave empty to put each service in a category named like its upstream category.",
    )
    markup_percent = forms.DecimalField(
        max_digits=8, decimal_places=2, required=False, help_text="Leave empty to use the category's or panel default."
    )


@admin.register(UpstreamService)
class UpstreamServiceWithImportAdmin(UpstreamServiceAdmin):
    list_display = (*UpstreamServiceAdmin.list_display, "is_sold")
    actions = ("import_into_catalog",)

    @admin.display(boolean=True, description="Sold")
    def is_sold(self, obj: UpstreamService) -> bool:
        return obj.routes.exists()

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("catalog.import_service")

    @admin.action(description="Import into the catalogue…", permissions=["import"])
    def import_into_catalog(self, request: HttpRequest, queryset: QuerySet[UpstreamService]) -> HttpResponse | None:
        if "apply" in request.POST:
            form = ImportForm(request.POST)
            if form.is_valid():
                created = catalog_import_upstream(
                    upstream_ids=queryset.values_list("pk", flat=True),
                    category=form.cleaned_data["category"],
                    markup_percent=form.cleaned_data["markup_percent"],
                    actor=request.user,  # type: ignore[arg-type]
                )
                skipped = queryset.count() - len(created)
                self.message_user(request, f"Imported {len(created)} service(s); {skipped} already sold or removed.")
                return None
        else:
            form = ImportForm()
        return render(
            request,
            "admin/catalog/import_services.html",
            {
                **self.admin_site.each_context(request),
                "title": "Import upstream services",
                "form": form,
                "queryset": queryset,
                "count": queryset.count(),
                "opts": self.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )
