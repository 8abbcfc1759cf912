"""The admin of refill and cancel requests, their unknown outcomes resolved in bulk."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import User

from .. import services
from ..models import CancelRequest, Refill, RequestState
from .orders import BULK_LIMIT, pasted_ids_field


class _ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RequestResolveForm(forms.Form):
    resolution = forms.ChoiceField(
        widget=forms.RadioSelect,
        choices=[
            (services.REQUEST_SENT, "The provider has them (refills: paste its refill ids)"),
            (services.REQUEST_REQUEUE, "The provider never got them: send them again"),
            (services.REQUEST_REJECTED, "Give them up: mark them refused"),
        ],
    )
    provider_ids = pasted_ids_field(
        "Provider's refill ids",
        "Refills the provider has: one id a line, in the order listed, or “our id, provider's id”.",
    )
    reason = forms.CharField(max_length=200, label="Reason (what the provider answered)")


class _UnknownRequestsAdmin(_ReadOnlyAdmin):
    """Refill and cancel requests whose forwarding outcome is unknown, resolved in bulk."""

    actions = ("resolve_unknown",)

    def has_resolve_unknown_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.resolve_unknown_order")

    @admin.action(description="Resolve unknown requests…", permissions=["resolve_unknown"])
    def resolve_unknown(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        chosen = queryset.filter(state=RequestState.UNKNOWN).order_by("id")
        form = RequestResolveForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            user = request.user
            assert isinstance(user, User)
            try:
                done = services.upstream_requests_resolve_unknown(
                    model=self.model,
                    request_ids=list(chosen.values_list("id", flat=True)[:BULK_LIMIT]),
                    actor=user,
                    resolution=form.cleaned_data["resolution"],
                    provider_ids=form.cleaned_data["provider_ids"],
                    reason=form.cleaned_data["reason"],
                )
            except services.OrderError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Resolved {done} requests.", messages.SUCCESS)
                return None
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "title": f"Resolve {opts.verbose_name_plural} whose outcome is unknown",
            "requests": list(chosen[:BULK_LIMIT]),
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "changelist": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        }
        return TemplateResponse(request, "orders/admin_resolve_requests.html", context)


@admin.register(Refill)
class RefillAdmin(_UnknownRequestsAdmin):
    list_display = (
        "id",
        "created_at",
        "order_link",
        "user",
        "provider",
        "provider_refill_id",
        "status",
        "state",
        "note",
    )
    list_filter = ("status", "state", "provider", "created_at")
    search_fields = ("=id", "=order__id", "=provider_refill_id", "user__username")
    list_select_related = ("user", "provider")
    ordering = ("-id",)

    @admin.display(description="Order")
    def order_link(self, obj: Refill) -> str:
        return format_html(
            '<a href="{}">#{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]), obj.order_id
        )


@admin.register(CancelRequest)
class CancelRequestAdmin(_UnknownRequestsAdmin):
    list_display = ("id", "created_at", "order_link", "user", "provider", "state", "note")
    list_filter = ("state", "provider", "created_at")
    search_fields = ("=id", "=order__id", "user__username")
    list_select_related = ("user", "provider")
    ordering = ("-id",)

    @admin.display(description="Order")
    def order_link(self, obj: CancelRequest) -> str:
        return format_html(
            '<a href="{}">#{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]), obj.order_id
        )
