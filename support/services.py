"""Writes for support tickets. Views and the admin parse input and call these."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from kernel.text import has_hidden_characters
from orders.models import Order
from siteconf.selectors import site_settings

from .models import STATUS_TRANSITIONS, Kind, Message, OrderAction, Status, StatusChange, Ticket

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

MAX_ORDER_IDS = 50
# A customer with this many tickets waiting for staff must wait for an answer first.
MAX_OPEN_TICKETS = 10


class SupportError(Exception):
    """A ticket request that cannot be done; the message is for the person who asked."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def ticket_transition(*, ticket: Ticket, to: str, actor: User | None) -> bool:
    """Move a ticket to `to` if the table allows it and nobody moved it meanwhile."""
    old = ticket.status
    if to == old:
        return False
    if to not in STATUS_TRANSITIONS[old]:
        raise SupportError(
            _("A ticket that is %(old)s cannot become %(new)s.")
            % {"old": str(Status(old).label).lower(), "new": str(Status(to).label).lower()}
        )
    now = timezone.now()
    moved = Ticket.objects.filter(pk=ticket.pk, status=old).update(status=to, updated_at=now)
    if moved:
        StatusChange.objects.create(ticket=ticket, from_status=old, to_status=to, actor=actor)
        ticket.status = to
        ticket.updated_at = now
    return bool(moved)


def _owned_order_ids(*, user: User, order_ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(order_ids))
    if len(wanted) > MAX_ORDER_IDS:
        raise SupportError(
            _("Name at most %(limit)s orders in one ticket.") % {"limit": MAX_ORDER_IDS}, field="order_ids"
        )
    found = set(Order.objects.filter(user=user, pk__in=wanted).values_list("pk", flat=True))
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        listed = ", ".join(f"#{pk}" for pk in missing[:10])
        raise SupportError(_("These are not orders of yours: %(orders)s.") % {"orders": listed}, field="order_ids")
    return wanted


@transaction.atomic
def ticket_open(
    *,
    user: User,
    subject: str,
    kind: str,
    body: str,
    order_action: str = "",
    order_ids: Sequence[int] = (),
) -> Ticket:
    subject, body = subject.strip(), body.strip()
    if not subject or not body:
        raise SupportError(_("A ticket needs a subject and a message."))
    if has_hidden_characters(subject):
        # Staff read the subject in lists and e-mail subjects, where a bidi override hides what it says.
        raise SupportError(_("The subject contains invisible or control characters."), field="subject")
    if kind not in Kind.values:
        raise SupportError(_("Choose what the ticket is about."), field="kind")
    ids: list[int] = []
    if kind == Kind.ORDER:
        if order_action not in OrderAction.values:
            raise SupportError(_("Choose what you need for the orders."), field="order_action")
        if not order_ids:
            raise SupportError(_("Name the orders the ticket is about."), field="order_ids")
        ids = _owned_order_ids(user=user, order_ids=order_ids)
    else:
        order_action = ""
    waiting = Ticket.objects.filter(user=user, status=Status.OPEN).count()
    if waiting >= MAX_OPEN_TICKETS:
        raise SupportError(
            _("You have %(count)s tickets waiting for an answer; please wait for one before opening another.")
            % {"count": waiting}
        )
    now = timezone.now()
    ticket = Ticket.objects.create(
        user=user, subject=subject[:200], kind=kind, order_action=order_action, last_message_at=now
    )
    if ids:
        ticket.orders.add(*ids)
    Message.objects.create(ticket=ticket, author=user, is_staff_reply=False, body=body)
    transaction.on_commit(lambda: _notify_staff(ticket_id=ticket.pk, event="opened"))
    return ticket


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


@transaction.atomic
def ticket_reply_customer(*, ticket: Ticket, user: User, body: str) -> Message:
    """The customer writes in their own ticket; a closed or answered ticket opens again."""
    body = body.strip()
    if not body:
        raise SupportError(_("Write a message first."), field="body")
    locked = _locked(ticket)
    if locked.user_id != user.pk:
        raise SupportError(_("This is not your ticket."))
    message = Message.objects.create(ticket=locked, author=user, is_staff_reply=False, body=body)
    Ticket.objects.filter(pk=locked.pk).update(last_message_at=message.created_at)
    if locked.status != Status.OPEN:
        ticket_transition(ticket=locked, to=Status.OPEN, actor=user)
    ticket.status = locked.status
    transaction.on_commit(lambda: _notify_staff(ticket_id=locked.pk, event="replied"))
    return message


@transaction.atomic
def ticket_reply_staff(*, ticket: Ticket, staff: User, body: str, ticket_url: str, close: bool = False) -> Message:
    """Staff answer; the customer is e-mailed once the answer is committed."""
    body = body.strip()
    if not body:
        raise SupportError(_("Write a reply first."), field="reply")
    if not staff.is_staff:
        raise SupportError(_("Only staff answer tickets."))
    locked = _locked(ticket)
    message = Message.objects.create(ticket=locked, author=staff, is_staff_reply=True, body=body)
    Ticket.objects.filter(pk=locked.pk).update(last_message_at=message.created_at)
    ticket_transition(ticket=locked, to=Status.CLOSED if close else Status.ANSWERED, actor=staff)
    ticket.status = locked.status
    transaction.on_commit(lambda: _notify_customer(message_id=message.pk, ticket_url=ticket_url))
    return message


@transaction.atomic
def ticket_close(*, ticket: Ticket, actor: User) -> bool:
    locked = _locked(ticket)
    if not actor.is_staff and locked.user_id != actor.pk:
        raise SupportError(_("This is not your ticket."))
    if locked.status == Status.CLOSED:
        raise SupportError(_("The ticket is already closed."))
    moved = ticket_transition(ticket=locked, to=Status.CLOSED, actor=actor)
    ticket.status = locked.status
    return moved


def _notify_customer(*, message_id: int, ticket_url: str) -> None:
    message = Message.objects.select_related("ticket", "ticket__user").get(pk=message_id)
    ticket = message.ticket
    panel_name = site_settings().panel_name
    context = {"ticket": ticket, "message": message, "ticket_url": ticket_url, "panel_name": panel_name}
    # In the customer's language, not in that of the staff member who answered.
    with translation.override(ticket.user.language or settings.LANGUAGE_CODE):
        subject = _("[%(panel)s] Reply to ticket #%(id)s: %(subject)s") % {
            "panel": panel_name,
            "id": ticket.pk,
            "subject": ticket.subject,
        }
        body = render_to_string("support/email/staff_reply.txt", context)
    try:
        send_mail(
            subject=subject.replace("\n", " ")[:250],
            message=body,
            from_email=None,
            recipient_list=[ticket.user.email],
        )
    except Exception:  # the reply is saved and shown on the site either way
        logger.exception("could not e-mail the reply to ticket %s", ticket.pk)


def _notify_staff(*, ticket_id: int, event: str) -> None:
    if not settings.ADMINS:
        return
    ticket = Ticket.objects.select_related("user").get(pk=ticket_id)
    try:
        mail_admins(
            subject=f"Ticket #{ticket.pk} {event} by {ticket.user.get_username()}",
            message=f"{ticket.subject}\n\nAnswer it in the admin.",
            fail_silently=False,
        )
    except Exception:
        logger.exception("could not tell staff about ticket %s", ticket_id)
