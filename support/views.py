from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.utils import request_user
from kernel.numbers import int_or_none

from . import selectors, services
from .forms import ReplyForm, TicketForm
from .models import Kind, OrderAction, Status


def _int(value: str | None) -> int | None:
    return int_or_none(value, min=1)


@require_GET
@login_required
def ticket_list(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    status = request.GET.get("status") or None
    page = selectors.ticket_list_for_user(user=user, status=status, before=_int(request.GET.get("before")))
    context = {"page": page, "status": status if status in Status.values else None, "statuses": Status.choices}
    return render(request, "support/list.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def ticket_new(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    if request.method == "POST":
        form = TicketForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                ticket = services.ticket_open(
                    user=user,
                    subject=data["subject"],
                    kind=data["kind"],
                    order_action=data["order_action"],
                    order_ids=data["order_ids"],
                    body=data["message"],
                )
            except services.SupportError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                messages.success(
                    request, _("Ticket #%(id)s is open. We will answer here and by e-mail.") % {"id": ticket.pk}
                )
                return redirect("support:detail", pk=ticket.pk)
        messages.error(request, _("The ticket was not sent: please check the fields below."))
        return render(request, "support/new.html", {"form": form}, status=400)
    initial: dict[str, str] = {}
    order = _int(request.GET.get("order"))
    if order:
        initial.update({"kind": Kind.ORDER, "order_ids": str(order)})
    if request.GET.get("action") in OrderAction.values:
        initial.update({"kind": Kind.ORDER, "order_action": request.GET["action"]})
    return render(request, "support/new.html", {"form": TicketForm(initial=initial)})


def _render_detail(request: HttpRequest, pk: int, form: ReplyForm, status: int = 200) -> HttpResponse:
    ticket = selectors.ticket_get_for_user(user=request_user(request), pk=pk)
    context = {
        "ticket": ticket,
        "thread": selectors.ticket_messages(ticket=ticket),
        "order_ids": selectors.ticket_order_ids(ticket=ticket),
        "form": form,
    }
    return render(request, "support/detail.html", context, status=status)


@require_GET
@login_required
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, pk, ReplyForm())


@require_POST
@login_required
def ticket_reply(request: HttpRequest, pk: int) -> HttpResponse:
    user = request_user(request)
    ticket = selectors.ticket_get_for_user(user=user, pk=pk)
    form = ReplyForm(request.POST)
    if form.is_valid():
        try:
            services.ticket_reply_customer(ticket=ticket, user=user, body=form.cleaned_data["body"])
        except services.SupportError as exc:
            form.add_error("body", str(exc))
        else:
            messages.success(request, _("Your reply is sent."))
            return redirect("support:detail", pk=ticket.pk)
    messages.error(request, _("Your reply was not sent."))
    return _render_detail(request, pk, form, status=400)


@require_POST
@login_required
def ticket_close(request: HttpRequest, pk: int) -> HttpResponse:
    user = request_user(request)
    ticket = selectors.ticket_get_for_user(user=user, pk=pk)
    try:
        services.ticket_close(ticket=ticket, actor=user)
    except services.SupportError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("Ticket #%(id)s is closed. Reply to it any time to open it again.") % {"id": ticket.pk}
        )
    return redirect("support:detail", pk=ticket.pk)
