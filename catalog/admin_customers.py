"""Staff pages for what the catalogue sells to one customer (custom rates) and for the upstream
texts to review. Registered from catalog.admin."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User

from .models import CustomRate, Service, TextChange
from .rates import custom_rate_check, custom_rate_effective, custom_rates_set
from .services import CatalogError
from .text_changes import text_change_accept, text_change_dismiss


class CustomRateForm(forms.ModelForm):
    class Meta:
        model = CustomRate
        fields = ("user", "service", "rate", "markup_percent", "note")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        service, user = data.get("service"), data.get("user")
        if user is not None and (user.is_staff or user.is_superuser):
            raise ValidationError(_("Custom rates are for customers, not staff accounts."))
        if service is not None:
            try:
                custom_rate_check(service=service, rate=data.get("rate"), markup_percent=data.get("markup_percent"))
            except CatalogError as exc:
                raise ValidationError(str(exc)) from None
        return data


@admin.register(CustomRate)
class CustomRateAdmin(admin.ModelAdmin):
    form = CustomRateForm
    list_display = ("user", "service", "rate", "markup_percent", "cost", "pays", "created_by", "updated_at")
    list_select_related = ("user", "service", "created_by")
    list_filter = ("service__category",)
    search_fields = ("user__username", "user__email", "=service__id", "service__name")
    raw_id_fields = ("user", "service")
    readonly_fields = ("created_by", "created_at", "updated_at")

    @admin.display(description=gettext_lazy("Cost"))
    def cost(self, obj: CustomRate) -> Decimal:
        return obj.service.cost

    @admin.display(description=gettext_lazy("Customer pays"))
    def pays(self, obj: CustomRate) -> str:
        price, applied = custom_rate_effective(custom=obj)
        return (
            f"{price}" if applied else _("%(price)s (usual price: the rate is below the cost now)") % {"price": price}
        )

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {key: request.GET[key] for key in ("user", "service") if key in request.GET}

    def save_model(self, request: HttpRequest, obj: CustomRate, form: Any, change: bool) -> None:
        obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


class BulkCustomRateForm(forms.Form):
    customer = forms.CharField(max_length=150, label=gettext_lazy("Customer (username or e-mail)"))
    markup_percent = forms.DecimalField(
        required=False, max_digits=8, decimal_places=2, min_value=0, label=gettext_lazy("Markup over cost (%)")
    )
    rate = forms.DecimalField(
        required=False,
        max_digits=18,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        label=gettext_lazy("Rate per 1000"),
    )
    note = forms.CharField(required=False, max_length=200)

    def clean_customer(self) -> User:
        text = self.cleaned_data["customer"].strip()
        user = User.objects.filter(username=text).first() or User.objects.filter(email__iexact=text).first()
        if user is None:
            raise ValidationError(_("No such customer."))
        return user


def set_custom_rate(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Service]) -> HttpResponse | None:
    """The services admin's bulk action: one customer's rate or markup on every selected
    service, all or none."""
    form = BulkCustomRateForm(request.POST if request.POST.get("apply") == "1" else None)
    if form.is_bound and form.is_valid():
        staff = request.user
        assert isinstance(staff, User)
        data = form.cleaned_data
        try:
            count = custom_rates_set(
                user=data["customer"],
                services=queryset.order_by("pk"),
                rate=data["rate"],
                markup_percent=data["markup_percent"],
                actor=staff,
                note=data["note"],
            )
        except CatalogError as exc:
            form.add_error(None, str(exc))
        else:
            modeladmin.message_user(
                request, _("%(count)s custom rate(s) set for %(user)s.") % {"count": count, "user": data["customer"]}
            )
            return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "title": _("A customer's rate for the selected services"),
        "services": list(queryset.order_by("pk")[:500]),
        "count": queryset.count(),
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return render(request, "admin/catalog/bulk_custom_rate.html", context)


set_custom_rate.short_description = gettext_lazy("Set one customer's rate for the selected services…")  # type: ignore[attr-defined]
set_custom_rate.allowed_permissions = ("add_custom_rate",)  # type: ignore[attr-defined]


@admin.register(TextChange)
class TextChangeAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "service",
        "upstream",
        "field",
        "status",
        "old_short",
        "new_short",
        "decided_by",
    )
    list_filter = ("status", "field", "upstream__provider")
    list_select_related = ("service", "upstream__provider", "decided_by")
    search_fields = ("=service__id", "service__name")
    readonly_fields = [f.name for f in TextChange._meta.fields]
    actions = ("accept", "dismiss")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("catalog.review_textchange")

    @admin.display(description=gettext_lazy("Was"))
    def old_short(self, obj: TextChange) -> str:
        return obj.old_text[:80] + ("…" if len(obj.old_text) > 80 else "")

    @admin.display(description=gettext_lazy("Now upstream"))
    def new_short(self, obj: TextChange) -> str:
        return obj.new_text[:80] + ("…" if len(obj.new_text) > 80 else "")

    @admin.action(description=gettext_lazy("Accept: copy the new text into the service"), permissions=["review"])
    def accept(self, request: HttpRequest, queryset: QuerySet[TextChange]) -> None:
        staff = request.user
        assert isinstance(staff, User)
        done = sum(text_change_accept(change_id=pk, actor=staff) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, _("%(count)s change(s) accepted.") % {"count": done}, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Dismiss: keep the service's text"), permissions=["review"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet[TextChange]) -> None:
        staff = request.user
        assert isinstance(staff, User)
        done = sum(text_change_dismiss(change_id=pk, actor=staff) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, _("%(count)s change(s) dismissed.") % {"count": done}, messages.SUCCESS)
