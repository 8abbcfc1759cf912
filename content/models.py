from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .markdown import render_markdown


class Page(models.Model):
    """One of the panel's own pages, written in Markdown in the admin."""

    class Slug(models.TextChoices):
        TERMS = "terms", _("Terms of service")
        FAQ = "faq", _("FAQ")
        CONTACT = "contact", _("Contact")

    slug = models.CharField(_("page"), max_length=16, choices=Slug.choices, unique=True)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True, help_text=_("Markdown. HTML is sanitised: no scripts."))
    body_html = models.TextField(editable=False, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("page")
        verbose_name_plural = _("pages")

    def __str__(self) -> str:
        return self.get_slug_display()

    def save(self, *args: object, **kwargs: object) -> None:
        # The sanitised HTML is derived from the text on every save, never edited.
        self.body_html = render_markdown(self.body)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class NewsPost(models.Model):
    """News for customers; one marked as the announcement shows in a banner on every page."""

    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True, help_text=_("Markdown. HTML is sanitised: no scripts."))
    body_html = models.TextField(editable=False, blank=True)
    is_published = models.BooleanField(_("published"), default=True)
    is_announcement = models.BooleanField(
        _("announcement"),
        default=False,
        help_text=_("Show the title in a banner on every page (the newest published announcement)."),
    )
    published_at = models.DateTimeField(_("published at"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        verbose_name = _("news post")
        verbose_name_plural = _("news")

    def __str__(self) -> str:
        return self.title

    def save(self, *args: object, **kwargs: object) -> None:
        self.body_html = render_markdown(self.body)
        super().save(*args, **kwargs)  # type: ignore[arg-type]
