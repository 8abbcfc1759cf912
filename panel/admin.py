"""The user admin, extended by the panel with the customer page (everything about one
customer in one place) and the "log in as" button; the panel is the one layer that sees every
app a customer touches."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from accounts.admin import UserAdmin
from accounts.impersonation import impersonation_allowed
from accounts.models import User
from kernel.numbers import int_or_none

from .customers import customer_overview

admin.site.unregister(User)


@admin.register(User)
class CustomerUserAdmin(UserAdmin):
    change_form_template = "admin/panel/user_change_form.html"

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<int:pk>/customer/",
                self.admin_site.admin_view(self.customer_view),
                name="panel_customer",
            )
        ]
        return extra + super().get_urls()

    def customer_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        customer = get_object_or_404(User, pk=pk)
        user = request.user
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Customer %(name)s") % {"name": customer.get_username()},
            "overview": customer_overview(customer=customer),
            "can_impersonate": impersonation_allowed(staff=user, customer=customer),
            "can_set_rates": user.has_perm("catalog.add_customrate"),
            "can_block": user.has_perm("accounts.block_user"),
            "can_adjust": user.has_perm("wallets.adjust_wallet"),
        }
        return TemplateResponse(request, "admin/panel/customer.html", context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        pk = int_or_none(object_id)  # not str.isdigit(): it passes "²", which the database refuses
        target = User.objects.filter(pk=pk).first() if pk is not None else None
        extra = {
            **(extra_context or {}),
            "can_impersonate": target is not None and impersonation_allowed(staff=request.user, customer=target),
        }
        return super().change_view(request, object_id, form_url, extra)
