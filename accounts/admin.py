from typing import Any

from allauth.account.admin import EmailAddressAdmin as BaseEmailAddressAdmin
from allauth.account.models import EmailAddress
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from .impersonation import impersonation_allowed, impersonation_of, impersonation_start
from .models import ApiKey, Impersonation, User
from .services import BlockError, user_block, user_unblock


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "discount_percent", "is_staff", "is_active", "date_joined")
    list_filter = (*BaseUserAdmin.list_filter, "blocked_at")
    search_fields = ("username", "email")
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Panel", {"fields": ("timezone", "discount_percent", "referred_by", "blocked_at", "blocked_reason")}),
    )
    readonly_fields = ("blocked_at", "blocked_reason")
    raw_id_fields = ("referred_by",)
    actions = ("block", "unblock")

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<int:pk>/impersonate/",
                self.admin_site.admin_view(self.impersonate_view),
                name="accounts_user_impersonate",
            )
        ]
        return extra + super().get_urls()

    def impersonate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Log in as this customer (accounts/impersonation.py): POST, the permission, never
        onto staff, a superuser or a blocked customer, and not from inside another one."""
        if not request.user.has_perm("accounts.impersonate_user"):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        customer = User.objects.filter(pk=pk).first()
        if customer is None or impersonation_of(request) is not None:
            raise PermissionDenied
        if not impersonation_allowed(staff=request.user, customer=customer):
            raise PermissionDenied
        impersonation_start(request=request, customer=customer)
        messages.info(request, _("You are logged in as %(user)s.") % {"user": customer.get_username()})
        return redirect("home")

    def has_block_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.block_user")

    @admin.action(description="Block selected customers (no log-in, no API)…", permissions=["block"])
    def block(self, request: HttpRequest, queryset: QuerySet[User]) -> TemplateResponse | None:
        form = BlockForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            actor = request.user
            assert isinstance(actor, User)
            for user in queryset.order_by("pk"):
                try:
                    user_block(user_id=user.pk, actor=actor, reason=form.cleaned_data["reason"])
                except BlockError as exc:
                    self.message_user(request, exc.message, messages.WARNING)
                else:
                    self.message_user(request, f"{user.get_username()} is blocked.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Block customers",
            "users": list(queryset.order_by("pk")[:200]),
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/accounts/block_users.html", context)

    @admin.action(description="Unblock selected customers", permissions=["block"])
    def unblock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = request.user
        assert isinstance(actor, User)
        for user in queryset.filter(is_active=False).order_by("pk"):
            user_unblock(user_id=user.pk, actor=actor)
            self.message_user(request, f"{user.get_username()} is unblocked.", messages.SUCCESS)


class BlockForm(forms.Form):
    reason = forms.CharField(max_length=200, label="Why (kept on the customer)")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "digest", "user", "created_at", "last_used_at", "revoked_at", "revoked_reason")
    search_fields = ("prefix", "user__username")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


# allauth's action asks for no permission: a staff member who may only look could verify
# any address (and so take over password resets sent to it).
admin.site.unregister(EmailAddress)


@admin.register(EmailAddress)
class EmailAddressAdmin(BaseEmailAddressAdmin):
    @admin.action(description="Mark selected email addresses as verified", permissions=["change"])
    def make_verified(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().make_verified(request, queryset)


@admin.register(Impersonation)
class ImpersonationAdmin(admin.ModelAdmin):
    """The "log in as" audit trail: read-only for everyone."""

    list_display = ("started_at", "staff", "customer", "expires_at", "ended_at", "ended_how", "ip")
    list_filter = ("ended_how", "started_at")
    search_fields = ("staff__username", "customer__username", "customer__email")
    list_select_related = ("staff", "customer")
    readonly_fields = [f.name for f in Impersonation._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
