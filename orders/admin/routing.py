"""Staff see why an order was priced on its route at placing and why each submission
attempt went to its route (customers never do)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..models import RoutingDecision


class RoutingDecisionInline(admin.TabularInline):
    model = RoutingDecision
    extra = 0
    can_delete = False
    fields = ("created_at", "stage", "route", "policy", "reason", "candidates")
    readonly_fields = fields
    verbose_name = _("routing decision")
    verbose_name_plural = _("routing decisions")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
