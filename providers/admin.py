from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .client import ProviderError
from .models import Provider, ProviderCall, UpstreamService
from .services import provider_refresh_balance, provider_resume, provider_url_validate


class ProviderForm(forms.ModelForm):
    api_url = forms.URLField(label="API URL", max_length=500, assume_scheme="https")
    # The key is write-only: never rendered back, kept when left blank.
    api_key = forms.CharField(
        label="API key",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to keep the current key.",
    )

    class Meta:
        model = Provider
        fields = ("name", "api_url", "api_key", "currency", "exchange_rate", "low_balance_alert", "is_enabled")

    def clean_api_url(self) -> str:
        url = self.cleaned_data["api_url"]
        provider_url_validate(url=url)
        return url

    def clean_api_key(self) -> str:
        key = self.cleaned_data.get("api_key") or ""
        if not key and self.instance.pk:
            return self.instance.api_key
        if not key:
            raise ValidationError("An API key is required.")
        return key


class AttentionFilter(admin.SimpleListFilter):
    """The staff dashboard's links: enabled providers paused, or below their balance alert."""

    title = _("needs attention")
    parameter_name = "attention"

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
        return [("paused", str(_("paused"))), ("low", str(_("low on balance")))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Provider]) -> QuerySet[Provider]:
        if self.value() == "paused":
            return queryset.filter(is_enabled=True).exclude(paused_reason="")
        if self.value() == "low":
            return queryset.filter(Q(is_enabled=True, paused_reason="") & Q(balance__lt=F("low_balance_alert")))
        return queryset


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = (
        "name",
        "api_url",
        "currency",
        "is_enabled",
        "paused_reason",
        "balance",
        "balance_checked_at",
        "last_synced_at",
    )
    list_filter = ("is_enabled", AttentionFilter)

    class Media:
        css = {"all": ("admin_lists.css",)}

    search_fields = ("name", "api_url")
    readonly_fields = (
        "masked_key",
        "paused_reason",
        "balance",
        "balance_currency",
        "balance_checked_at",
        "last_synced_at",
        "last_sync_error",
    )
    actions: tuple[str, ...] = ("test_connection", "resume")

    @admin.display(description="Current key")
    def masked_key(self, obj: Provider) -> str:
        return obj.masked_key

    # Both call the provider and write what it answers (balance, services, prices).
    def has_sync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("providers.sync_provider")

    def has_resume_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("providers.resume_provider")

    @admin.action(description="Test connection and refresh balance", permissions=["sync"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            try:
                provider_refresh_balance(provider=provider)
            except (ProviderError, ValidationError) as exc:
                self.message_user(request, f"{provider.name}: failed — {exc}", messages.ERROR)
            else:
                self.message_user(
                    request, f"{provider.name}: connected, balance {provider.balance} {provider.balance_currency}"
                )

    @admin.action(description="Resume (clear the pause)", permissions=["resume"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            provider_resume(provider=provider)
        self.message_user(request, f"{queryset.count()} provider(s) resumed.")


@admin.register(UpstreamService)
class UpstreamServiceAdmin(admin.ModelAdmin):
    list_display: tuple[str, ...] = (
        "external_id",
        "name",
        "provider",
        "category",
        "type",
        "rate",
        "min_quantity",
        "max_quantity",
        "refill",
        "cancel",
        "dripfeed",
        "is_removed",
    )
    list_filter = ("provider", "type", "is_removed", "refill", "cancel", "category")
    search_fields = ("name", "external_id", "category")
    readonly_fields = [f.name for f in UpstreamService._meta.fields]
    list_per_page = 200

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[UpstreamService]:
        return super().get_queryset(request).select_related("provider")


@admin.register(ProviderCall)
class ProviderCallAdmin(admin.ModelAdmin):
    list_display = ("started_at", "provider", "action", "order_ref", "outcome", "http_status", "duration_ms", "error")
    list_filter = ("provider", "action", "outcome")
    search_fields = ("=order_ref", "error")
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in ProviderCall._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # the record of what was asked upstream is kept
