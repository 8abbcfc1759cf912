from typing import Any

from allauth.account.admin import EmailAddressAdmin as BaseEmailAddressAdmin
from allauth.account.models import EmailAddress
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import ApiKey, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "discount_percent", "is_staff", "date_joined")
    search_fields = ("username", "email")
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Panel", {"fields": ("timezone", "discount_percent", "referred_by")}),
    )
    raw_id_fields = ("referred_by",)


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
