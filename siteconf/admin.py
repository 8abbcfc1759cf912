from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import SINGLETON_PK, SiteSettings
from .selectors import site_settings_row
from .services import (
    LOGO_MAX_BYTES,
    SiteSettingsError,
    logo_check,
    money_has_moved,
    site_logo_set,
    site_settings_save,
)


class SiteSettingsForm(forms.ModelForm):
    logo_upload = forms.FileField(
        label=_("Upload a logo"),
        required=False,
        help_text=_("PNG, JPEG, GIF or WebP, at most %(size)d KB.") % {"size": LOGO_MAX_BYTES // 1024},
    )
    logo_remove = forms.BooleanField(label=_("Remove the logo"), required=False)

    class Meta:
        model = SiteSettings
        fields = (
            "panel_name",
            "support_email",
            "terms_url",
            "privacy_url",
            "base_currency",
            "affiliate_percent",
            "manual_instructions",
            "bank_details",
            "signup_open",
            "email_verification",
        )

    def clean_base_currency(self) -> str:
        value = str(self.cleaned_data["base_currency"])
        if self.instance.pk and "base_currency" in self.changed_data and money_has_moved():
            raise ValidationError(_("The base currency cannot change once money has moved (the ledger has entries)."))
        return value

    def clean_logo_upload(self) -> bytes | None:
        upload = self.cleaned_data.get("logo_upload")
        if not upload:
            return None
        if upload.size is not None and upload.size > LOGO_MAX_BYTES:
            raise ValidationError(_("The logo is larger than %(size)d KB.") % {"size": LOGO_MAX_BYTES // 1024})
        data = upload.read(LOGO_MAX_BYTES + 1)
        try:
            logo_check(data)
        except SiteSettingsError as exc:
            raise ValidationError(str(exc)) from exc
        return bytes(data)


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    """The one settings row: its change page is the list page; changing it needs
    siteconf.change_sitesettings (the Owner role). Its History page lists every save with
    who made it and what changed (django-simple-history records them); there is no revert,
    so every change goes through site_settings_save and its checks."""

    form = SiteSettingsForm
    readonly_fields = ("logo_preview", "elsewhere", "updated_at")
    fieldsets = (
        (_("Identity"), {"fields": ("panel_name", "logo_preview", "logo_upload", "logo_remove", "support_email")}),
        (_("Legal"), {"fields": ("terms_url", "privacy_url")}),
        (_("Money"), {"fields": ("base_currency", "affiliate_percent", "elsewhere")}),
        (_("Manual transfers"), {"fields": ("manual_instructions", "bank_details")}),
        (_("Sign-up"), {"fields": ("signup_open", "email_verification")}),
        (None, {"fields": ("updated_at",)}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # Django's 403
        row = site_settings_row()
        return HttpResponseRedirect(reverse("admin:siteconf_sitesettings_change", args=[row.pk]))

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> Any:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        records = list(
            SiteSettings.history.select_related("history_user").order_by("-history_date", "-history_id")[:101]
        )
        rows = []
        for record, older in zip(records, [*records[1:], None], strict=True):
            changes = record.diff_against(older).changes if older is not None else []
            rows.append({"record": record, "changes": changes, "first": older is None})
        context = {
            **self.admin_site.each_context(request),
            "title": _("Change history: panel configuration"),
            "opts": self.model._meta,
            "rows": rows[:100],
            "field_names": {f.name: f.verbose_name for f in SiteSettings._meta.fields},
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/siteconf/history.html", context)

    @admin.display(description=_("Current logo"))
    def logo_preview(self, obj: SiteSettings) -> str:
        if not obj.logo_version:
            return str(_("No logo: the panel's name is shown."))
        url = reverse("siteconf:logo", args=[obj.logo_version])
        return format_html('<img src="{}" alt="" style="max-height:48px">', url)

    @admin.display(description=_("Set elsewhere"))
    def elsewhere(self, obj: SiteSettings) -> str:
        return format_html(
            '{} <a href="{}">{}</a>. {} <a href="{}">{}</a>.',
            _("Deposit limits, fees and which gateways are offered:"),
            reverse("admin:wallets_gatewaysetting_changelist"),
            _("Gateway settings"),
            _("Deposit bonuses:"),
            reverse("admin:wallets_bonustier_changelist"),
            _("Bonus tiers"),
        )

    def save_model(self, request: HttpRequest, obj: SiteSettings, form: Any, change: bool) -> None:
        upload = form.cleaned_data.get("logo_upload")
        if upload:
            site_logo_set(row=obj, data=upload)
        elif form.cleaned_data.get("logo_remove"):
            site_logo_set(row=obj, data=b"")
        obj.pk = SINGLETON_PK
        site_settings_save(row=obj, actor=request.user)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except SiteSettingsError as exc:
            # A refusal decided under the row lock (the base currency after money moved).
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
