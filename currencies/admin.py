"""Staff: currencies and their rates. A rate changes only through a service, with its history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from kernel.money import MoneyFormatError, to_decimal

from . import services
from .models import Currency, RateChange


class CurrencyForm(forms.ModelForm):
    set_rate = forms.CharField(
        label=_("Set the rate by hand"),
        required=False,
        help_text=_("Units of this currency per one unit of the panel's currency. Makes the rate manual."),
    )
    reason = forms.CharField(label=_("Reason"), required=False, max_length=255)

    class Meta:
        model = Currency
        fields = ("code", "name", "symbol", "decimals", "enabled", "source")

    def clean_set_rate(self) -> str:
        value = (self.cleaned_data.get("set_rate") or "").strip()
        if value:
            try:
                number = to_decimal(value)
            except MoneyFormatError as exc:
                raise forms.ValidationError(_("The rate must be a number.")) from exc
            if number <= 0:
                raise forms.ValidationError(_("The rate must be above zero."))
        return value


@admin.register(Currency)
class CurrencyAdmin(admin.ModelAdmin):
    form = CurrencyForm
    list_display = ("code", "name", "symbol", "rate", "source", "updated_at", "stale", "held_rate", "enabled")
    list_filter = ("enabled", "source")
    search_fields = ("code", "name")
    readonly_fields = ("rate", "updated_at", "held_rate", "held_at")
    actions = ["refresh_now", "approve_held", "reject_held"]

    @admin.display(description=_("stale"), boolean=True)
    def stale(self, obj: Currency) -> bool:
        return obj.is_stale()

    def get_readonly_fields(self, request: HttpRequest, obj: Currency | None = None) -> tuple[str, ...]:
        # The code names what customers chose: a row is never moved to another currency.
        return (*self.readonly_fields, "code") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Currency, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        rate = form.cleaned_data.get("set_rate")
        if rate:
            services.currency_set_rate(
                currency_id=obj.pk,
                rate=rate,
                actor=request.user,  # type: ignore[arg-type]
                reason=form.cleaned_data.get("reason") or "",
            )

    def has_refresh_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("currencies.refresh_rates")

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("currencies.review_rate")

    @admin.action(description=_("Refresh automatic rates from the source now"), permissions=["refresh"])
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Currency]) -> None:
        result = services.rates_refresh()
        self.message_user(request, result.summary(), messages.ERROR if result.error else messages.SUCCESS)

    def _review(self, request: HttpRequest, queryset: QuerySet[Currency], *, approve: bool) -> None:
        for currency_id in queryset.filter(held_rate__isnull=False).values_list("pk", flat=True):
            currency = services.rate_review(currency_id=currency_id, approve=approve, actor=request.user)  # type: ignore[arg-type]
            self.message_user(request, f"{currency.code}: {currency.rate}", messages.SUCCESS)

    @admin.action(description=_("Approve the held rates"), permissions=["review"])
    def approve_held(self, request: HttpRequest, queryset: QuerySet[Currency]) -> None:
        self._review(request, queryset, approve=True)

    @admin.action(description=_("Reject the held rates"), permissions=["review"])
    def reject_held(self, request: HttpRequest, queryset: QuerySet[Currency]) -> None:
        self._review(request, queryset, approve=False)


@admin.register(RateChange)
class RateChangeAdmin(admin.ModelAdmin):
    list_display = ("created_at", "currency", "old_rate", "new_rate", "source", "status", "actor", "reason")
    list_filter = ("status", "source", "currency")
    list_select_related = ("currency", "actor")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
