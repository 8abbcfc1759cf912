"""Staff answer tickets here: the thread is shown read-only and a reply box calls the service."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from kernel.site import site_url

from . import services
from .models import Message, Status, Ticket


class TicketAdminForm(forms.ModelForm):
    reply = forms.CharField(
        label="Reply to the customer",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text="Sent by e-mail and shown on the customer's ticket page.",
    )
    close_after_reply = forms.BooleanField(label="Close the ticket with this reply", required=False)

    class Meta:
        model = Ticket
        fields: list[str] = []


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    form = TicketAdminForm
    list_display = ("id", "subject", "user", "kind", "order_action", "status", "last_message_at")
    list_filter = ("status", "kind", "order_action")
    search_fields = ("=id", "subject", "user__username", "user__email")
    list_select_related = ("user",)
    ordering = ("status", "-last_message_at")
    show_full_result_count = False
    actions = ["close_selected"]
    readonly_fields = ("user", "subject", "kind", "order_action", "status", "order_list", "created_at", "conversation")
    fieldsets = (
        (None, {"fields": ("user", "subject", "kind", "order_action", "order_list", "status", "created_at")}),
        ("Conversation", {"fields": ("conversation",)}),
        ("Answer", {"fields": ("reply", "close_after_reply")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Orders")
    def order_list(self, obj: Ticket) -> str:
        ids = sorted(obj.orders.values_list("pk", flat=True))
        if not ids:
            return "—"
        try:
            base = reverse("admin:orders_order_changelist")
        except NoReverseMatch:  # the orders admin is not registered
            return ", ".join(f"#{pk}" for pk in ids)
        return format_html_join(", ", '<a href="{}{}/change/">#{}</a>', ((base, pk, pk) for pk in ids))

    @admin.display(description="Messages")
    def conversation(self, obj: Ticket) -> str:
        rows: QuerySet[Message] = obj.messages.select_related("author").order_by("id")
        return format_html(
            '<div class="ticket-thread">{}</div>',
            format_html_join(
                "",
                '<div style="margin-bottom:1em;padding:.5em;border-left:4px solid {}">'
                '<strong>{}</strong> <small>{}</small><div style="white-space:pre-wrap">{}</div></div>',
                (
                    (
                        "#417690" if m.is_staff_reply else "#ccc",
                        f"Staff ({m.author})" if m.is_staff_reply else f"Customer ({m.author})",
                        m.created_at.strftime("%Y-%m-%d %H:%M %Z"),
                        m.body,
                    )
                    for m in rows
                ),
            ),
        )

    def save_model(self, request: HttpRequest, obj: Ticket, form: Any, change: bool) -> None:
        reply = form.cleaned_data.get("reply", "").strip()
        close = form.cleaned_data.get("close_after_reply", False)
        try:
            if reply:
                url = site_url(reverse("support:detail", args=[obj.pk]))
                services.ticket_reply_staff(ticket=obj, staff=request.user, body=reply, ticket_url=url, close=close)  # type: ignore[arg-type]
                self.message_user(request, f"Reply sent to {obj.user.email}.", messages.SUCCESS)
            elif close and obj.status != Status.CLOSED:
                services.ticket_close(ticket=obj, actor=request.user)  # type: ignore[arg-type]
        except services.SupportError as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None  # nothing editable besides the reply

    # Closing is part of answering: the same permission as the reply box (which can close too).
    @admin.action(description="Close selected tickets", permissions=["change"])
    def close_selected(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        closed = 0
        for ticket in queryset.exclude(status=Status.CLOSED):
            try:
                closed += services.ticket_close(ticket=ticket, actor=request.user)  # type: ignore[arg-type]
            except services.SupportError as exc:
                self.message_user(request, f"#{ticket.pk}: {exc}", messages.ERROR)
        self.message_user(request, f"{closed} ticket(s) closed.", messages.SUCCESS)
