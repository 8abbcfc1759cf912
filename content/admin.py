from __future__ import annotations

from django.contrib import admin

from .models import NewsPost, Page


@admin.register(Page)
class PageAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "updated_at")
    fields = ("slug", "title", "body")


@admin.register(NewsPost)
class NewsPostAdmin(admin.ModelAdmin):
    list_display = ("title", "published_at", "is_published", "is_announcement")
    list_filter = ("is_published", "is_announcement")
    search_fields = ("title",)
    fields = ("title", "body", "published_at", "is_published", "is_announcement")
