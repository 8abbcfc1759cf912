"""Staff interface for orders. Money, status and upstream ids are read-only here: every
change goes through a service (resend, resolve unknown, cancel and refund, set Partial,
mark Completed), which records who did it and why."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from accounts.models import User
from kernel.admin import QuickActionCheckbox
from kernel.db import EstimatedCountPaginator
from kernel.numbers import WholeNumberField, int_or_none

from .. import services
from ..models import Order, OrderEvent, Refill, State
from ..selectors import order_provider_calls
from .changelist import CustomerFilter, OlderThanFilter, OrderChangeList
from .routing import RoutingDecisionInline


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "from_status", "to_status", "from_state", "to_state", "reason", "actor")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RefillInline(admin.TabularInline):
    model = Refill
    extra = 0
    can_delete = False
    fields = ("id", "created_at", "provider_refill_id", "status", "state", "note")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Confirmation pages list (and bulk actions act on) at most this many orders at once.
BULK_LIMIT = 200


class ResolveUnknownForm(forms.Form):
    resolution = forms.ChoiceField(
        widget=forms.RadioSelect,
        choices=[
            (services.RESOLVE_PLACED, "The provider has it: attach its order id (becomes sent)"),
            (services.RESOLVE_REQUEUE, "The provider never placed it: send it again"),
            (services.RESOLVE_CANCEL, "The provider never placed it: cancel and refund the customer"),
        ],
    )
    provider_order_id = forms.CharField(required=False, max_length=64, label="Provider's order id")


def pasted_ids_field(label: str, help_text: str) -> forms.CharField:
    """Ids staff paste from the provider's panel, one a line (services.provider_ids_match)."""
    return forms.CharField(
        required=False,
        max_length=20_000,
        label=label,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 60}),
    )


class BulkResolveForm(forms.Form):
    resolution = forms.ChoiceField(
        widget=forms.RadioSelect,
        choices=[
            (services.RESOLVE_PLACED, "The provider has them: attach their order ids (they become sent)"),
            (services.RESOLVE_REQUEUE, "The provider never placed them: send them again"),
            (services.RESOLVE_CANCEL, "The provider never placed them: cancel and refund the customers"),
        ],
    )
    provider_ids = pasted_ids_field(
        "Provider's order ids",
        "For “has them”: one a line, in the order listed above, or “our id, provider's id” per line. "
        "All must match, or nothing changes.",
    )
    reason = forms.CharField(max_length=200, label="Reason (what the provider answered; kept in the history)")


class PartialForm(forms.Form):
    remains = WholeNumberField(min_value=0, label="Remains (units not delivered)")


class CancelRefundForm(forms.Form):
    reason = forms.CharField(max_length=200, required=False, label="Reason (kept in the history)")


@admin.register(Order)
class OrderAdmin(QuickActionCheckbox, admin.ModelAdmin):
    # Chosen to fit 1280 px with the filters (tests/e2e/test_staff_console.py); the provider's
    # order id is searchable and on each order's page.
    list_display = (
        "id",
        "created",
        "user",
        "service_name",
        "status",
        "state",
        "provider",
        "charge",
        "quantity",
        "remains",
        "sync_flag",
    )
    # No date_hierarchy: its year and month links are DISTINCT scans of the whole table; the
    # created_at filter (today, past 7 days, this month, this year) uses the index instead.
    list_filter = (
        "status",
        "state",
        "provider",
        "sync_flag",
        "margin_flag",
        CustomerFilter,
        "created_at",
        OlderThanFilter,
    )
    search_fields = ("=id", "link", "=provider_order_id", "user__username", "user__email")
    list_select_related = ("user", "service", "provider")
    # Millions of rows: never COUNT them, and read a deep page's ids before its rows.
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-id",)
    inlines = (OrderEventInline, RoutingDecisionInline, RefillInline)
    change_form_template = "orders/admin_order_change_form.html"
    change_list_template = "orders/admin_order_change_list.html"
    actions = ("resend", "resend_unknown", "resolve_unknown_bulk", "cancel_and_refund", "mark_completed")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "user",
                    "service",
                    "service_type",
                    "link",
                    "quantity",
                    "billing",
                    "runs",
                    "interval",
                    "fields",
                )
            },
        ),
        (
            "Status",
            {
                "fields": (
                    "status",
                    "state",
                    "provider_status",
                    "remains",
                    "start_count",
                    "customer_note",
                    "sync_flag",
                    "sync_note",
                )
            },
        ),
        (
            "Money",
            {
                "fields": (
                    "price_per_1000",
                    "charge",
                    "provider_rate",
                    "cost",
                    "provider_charge",
                    "margin_flag",
                    "refund",
                    "profit",
                )
            },
        ),
        (
            "Upstream",
            {
                "fields": (
                    "provider",
                    "route",
                    "external_service_id",
                    "provider_order_id",
                    "routes_tried",
                    "attempts",
                    "next_attempt_at",
                    "sending_started_at",
                    "sent_at",
                    "last_checked_at",
                    "started_at",
                    "completed_at",
                    "eta_start_seconds",
                    "eta_complete_seconds",
                    "eta_sample",
                    "idempotency_key",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        ("Provider calls", {"fields": ("provider_calls",)}),
    )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return OrderChangeList

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Everything: changes are actions that go through the services.
        return [f.name for f in Order._meta.fields] + ["refund", "profit", "provider_calls"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # Permissions of the actions and pages below (`@admin.action(permissions=[...])` looks
    # these up by name, so an action a person may not run is not even offered).
    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.resend_order")

    def has_resolve_unknown_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.resolve_unknown_order")

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.refund_order")

    def has_complete_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.complete_order")

    @admin.display(description="Service", ordering="service__name")
    def service_name(self, obj: Order) -> str:
        name = obj.service.name
        return format_html('<span title="{}">{}</span>', name, name if len(name) <= 40 else f"{name[:38]}…")

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: Order) -> str:
        return date_format(localtime(obj.created_at), "Y-m-d H:i")

    class Media:
        css = {"all": ("admin_lists.css",)}

    @admin.display(description="Refund due by status")
    def refund(self, obj: Order) -> Any:
        return services.refund_amount(order=obj)

    @admin.display(description="Profit (charge less refund and upstream cost)")
    def profit(self, obj: Order) -> Any:
        return services.order_profit(order=obj)

    @admin.display(description="Calls to the provider")
    def provider_calls(self, obj: Order) -> str:
        calls = order_provider_calls(order=obj)
        if not calls:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (
                    c.started_at,
                    c.provider,
                    c.action,
                    c.outcome,
                    c.duration_ms,
                    c.http_status or "—",
                    (c.error or c.body)[:300],
                )
                for c in calls
            ),
        )
        return format_html(
            '<table class="provider-calls"><tr><th>When</th><th>Provider</th><th>Action</th><th>Outcome</th>'
            "<th>Took</th><th>HTTP</th><th>Error or body</th></tr>{}</table>",
            rows,
        )

    # --- Per-order pages -----------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        own = [
            path("<int:pk>/resolve/", self.admin_site.admin_view(self.resolve_view), name="orders_order_resolve"),
            path("<int:pk>/partial/", self.admin_site.admin_view(self.partial_view), name="orders_order_partial"),
        ]
        return own + super().get_urls()

    def _change_url(self, order: Order) -> str:
        return reverse("admin:orders_order_change", args=[order.pk])

    def _page(self, request: HttpRequest, order: Order, form: forms.Form, title: str) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": order,
            "title": title,
            "form": form,
        }
        return TemplateResponse(request, "orders/admin_order_form.html", context)

    def resolve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_resolve_unknown_permission(request):
            raise PermissionDenied
        order = get_object_or_404(Order, pk=pk)
        form = ResolveUnknownForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.order_resolve_unknown(
                    order_id=order.pk,
                    actor=self._staff(request),
                    resolution=form.cleaned_data["resolution"],
                    provider_order_id=form.cleaned_data["provider_order_id"],
                )
            except services.OrderError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Order #{order.pk} resolved.", messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(order))
        return self._page(request, order, form, f"Resolve order #{order.pk} (outcome unknown)")

    def partial_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_refund_permission(request):
            raise PermissionDenied
        order = get_object_or_404(Order, pk=pk)
        form = PartialForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.order_set_partial(
                    order_id=order.pk,
                    actor=self._staff(request),
                    remains=form.cleaned_data["remains"],
                )
            except services.OrderError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Order #{order.pk} set Partial and refunded its remains.", messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(order))
        return self._page(request, order, form, f"Set order #{order.pk} Partial")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra = dict(extra_context or {})
        pk = int_or_none(object_id)
        order = Order.objects.filter(pk=pk).first() if pk is not None else None
        if order is not None:
            extra["can_resolve"] = order.state == State.UNKNOWN and self.has_resolve_unknown_permission(request)
            extra["can_set_partial"] = (
                order.state == State.SENT and not order.is_terminal and self.has_refund_permission(request)
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)

    # --- Actions ---------------------------------------------------------------------------------
    @staticmethod
    def _staff(request: HttpRequest) -> User:
        assert isinstance(request.user, User)  # the admin only lets staff in
        return request.user

    def _each(self, request: HttpRequest, queryset: QuerySet[Order], verb: str, func: Any) -> None:
        done, refused = 0, []
        for order_id in queryset.order_by("id").values_list("id", flat=True):
            try:
                func(order_id)
            except services.OrderError as exc:
                refused.append(exc.message)
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb}: {done} orders.", messages.SUCCESS)
        for message in refused[:20]:
            self.message_user(request, message, messages.WARNING)

    @admin.action(description="Send queued orders now", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        unknown = queryset.filter(state=State.UNKNOWN).count()
        if unknown:
            self.message_user(
                request,
                f"{unknown} orders have an unknown outcome and were left alone: use "
                "“Resend unknown orders” after checking with the provider.",
                messages.WARNING,
            )
        self._each(
            request,
            queryset.exclude(state=State.UNKNOWN),
            "Queued for sending",
            lambda pk: services.order_resend(order_id=pk, actor=self._staff(request)),
        )

    @admin.action(
        description="Resend unknown orders (after confirming the provider never placed them)",
        permissions=["resolve_unknown"],
    )
    def resend_unknown(self, request: HttpRequest, queryset: QuerySet[Order]) -> TemplateResponse | None:
        chosen = queryset.filter(state=State.UNKNOWN)
        if request.POST.get("confirm") == "yes":
            self._each(
                request,
                chosen,
                "Resent",
                lambda pk: services.order_resend(order_id=pk, actor=self._staff(request), confirm_unknown=True),
            )
            return None
        return self._confirm(
            request,
            chosen,
            action="resend_unknown",
            title="Resend orders whose outcome is unknown",
            warning="The provider may already have these orders. Resend only after checking with the provider "
            "that it never placed them; otherwise the customer is served twice and we pay twice.",
        )

    @admin.action(description="Resolve unknown orders in bulk…", permissions=["resolve_unknown"])
    def resolve_unknown_bulk(self, request: HttpRequest, queryset: QuerySet[Order]) -> TemplateResponse | None:
        chosen = queryset.filter(state=State.UNKNOWN).order_by("id")
        form = BulkResolveForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            ids = list(chosen.values_list("id", flat=True)[:BULK_LIMIT])
            try:
                done = services.orders_resolve_unknown(
                    order_ids=ids,
                    actor=self._staff(request),
                    resolution=form.cleaned_data["resolution"],
                    provider_ids=form.cleaned_data["provider_ids"],
                    reason=form.cleaned_data["reason"],
                )
            except services.OrderError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Resolved {done} orders.", messages.SUCCESS)
                return None
        return self._confirm(
            request,
            chosen,
            action="resolve_unknown_bulk",
            title="Resolve orders whose outcome is unknown",
            warning="Ask the provider about these orders first. Orders it has become sent with its order ids; "
            f"orders it never placed are sent again or refunded. At most {BULK_LIMIT} at once.",
            form=form,
        )

    @admin.action(description="Cancel and refund", permissions=["refund"])
    def cancel_and_refund(self, request: HttpRequest, queryset: QuerySet[Order]) -> TemplateResponse | None:
        if request.POST.get("confirm") == "yes":
            reason = request.POST.get("reason", "")[:200]
            self._each(
                request,
                queryset,
                "Canceled and refunded",
                lambda pk: services.order_cancel_refund(order_id=pk, actor=self._staff(request), reason=reason),
            )
            return None
        return self._confirm(
            request,
            queryset,
            action="cancel_and_refund",
            title="Cancel and refund the whole charge",
            warning="Each customer gets the whole charge back, whatever the provider still delivers.",
            form=CancelRefundForm(),
        )

    @admin.action(description="Mark Completed", permissions=["complete"])
    def mark_completed(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._each(
            request,
            queryset,
            "Marked Completed",
            lambda pk: services.order_mark_completed(order_id=pk, actor=self._staff(request)),
        )

    def _confirm(
        self,
        request: HttpRequest,
        queryset: QuerySet[Order],
        *,
        action: str,
        title: str,
        warning: str,
        form: forms.Form | None = None,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "warning": warning,
            "orders": list(queryset.select_related("user", "provider")[:BULK_LIMIT]),
            "action": action,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "orders/admin_confirm_action.html", context)
