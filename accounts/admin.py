from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

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
