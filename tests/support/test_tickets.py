from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from support import services
from support.models import Message, Status, StatusChange, Ticket
from tests.support.conftest import make_order

pytestmark = pytest.mark.django_db


def _open(user: Any, **extra: Any) -> Ticket:
    values = {"subject": "Where is my order?", "kind": "other", "body": "Hello, it has not started."} | extra
    return services.ticket_open(user=user, **values)


def _counts() -> tuple[int, int, int]:
    return Ticket.objects.count(), Message.objects.count(), StatusChange.objects.count()


# --- opening ----------------------------------------------------------------------------
def test_customer_opens_an_order_ticket_for_own_orders(customer_client: Client, customer: Any) -> None:
    first, second = make_order(customer), make_order(customer)
    response = customer_client.post(
        reverse("support:new"),
        {
            "subject": "Refill please",
            "kind": "order",
            "order_action": "refill",
            "order_ids": f"#{first.pk}, {second.pk} {first.pk}",
            "message": "The followers dropped.",
        },
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("support:detail", args=[ticket.pk])
    assert (ticket.user, ticket.kind, ticket.order_action, ticket.status) == (customer, "order", "refill", "open")
    assert sorted(ticket.orders.values_list("pk", flat=True)) == [first.pk, second.pk]
    assert ticket.messages.get().body == "The followers dropped."
    page = customer_client.get(response["Location"]).content.decode()
    assert "Refill please" in page and f"#{first.pk}" in page and "is open" in page


def test_order_ids_of_another_customer_are_refused_and_nothing_is_created(
    customer_client: Client, customer: Any, other_customer: Any
) -> None:
    mine, theirs = make_order(customer), make_order(other_customer)
    response = customer_client.post(
        reverse("support:new"),
        {
            "subject": "Cancel",
            "kind": "order",
            "order_action": "cancel",
            "order_ids": f"{mine.pk},{theirs.pk}",
            "message": "Please cancel",
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert f"not orders of yours: #{theirs.pk}" in body
    assert "is-invalid" in body  # the error sits next to the order ids field
    assert _counts() == (0, 0, 0)


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"kind": "order", "order_action": "", "order_ids": "1"}, "Choose what you need"),
        ({"kind": "order", "order_action": "refill", "order_ids": ""}, "Name the orders"),
        ({"kind": "order", "order_action": "refill", "order_ids": "12a"}, "order numbers only"),
        ({"kind": "bogus"}, "Select a valid choice"),
        ({"kind": "other", "subject": ""}, "This field is required"),
    ],
)
def test_invalid_ticket_forms_show_errors_and_create_nothing(
    customer_client: Client, data: dict[str, str], field_error: str
) -> None:
    payload = {"subject": "Help", "message": "text", **data}
    response = customer_client.post(reverse("support:new"), payload)
    assert response.status_code == 400
    assert field_error in response.content.decode()
    assert _counts() == (0, 0, 0)


def test_payment_ticket_ignores_order_fields(customer: Any) -> None:
    ticket = _open(customer, kind="payment", order_action="refill", order_ids=[999])
    assert ticket.order_action == "" and ticket.orders.count() == 0


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200b", "\ufeff", "\x00"])
def test_a_subject_with_invisible_or_reordering_characters_is_refused(customer: Any, char: str) -> None:
    with pytest.raises(services.SupportError, match="invisible"):
        _open(customer, subject=f"Refund {char}321 USD")
    assert _counts() == (0, 0, 0)


def test_too_many_waiting_tickets_are_refused(customer: Any) -> None:
    for _ in range(services.MAX_OPEN_TICKETS):
        _open(customer)
    with pytest.raises(services.SupportError, match="waiting for an answer"):
        _open(customer)
    assert Ticket.objects.count() == services.MAX_OPEN_TICKETS


def test_new_ticket_form_is_prefilled_from_an_order_link(customer_client: Client) -> None:
    body = customer_client.get(reverse("support:new"), {"order": "42", "action": "refill"}).content.decode()
    assert 'value="42"' in body and '<option value="refill" selected>' in body


# --- the thread ---------------------------------------------------------------------------
def test_staff_reply_answers_the_ticket_and_emails_the_customer(
    customer: Any, staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = _open(customer)
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_reply_staff(
            ticket=ticket, staff=staff, body="It starts within the hour.", ticket_url="http://panel/tickets/1/"
        )
    ticket.refresh_from_db()
    assert ticket.status == Status.ANSWERED
    assert [m.is_staff_reply for m in ticket.messages.all()] == [False, True]
    [email] = mail.outbox
    assert email.to == [customer.email]
    assert f"ticket #{ticket.pk}" in email.subject
    assert "It starts within the hour." in email.body and "http://panel/tickets/1/" in email.body
    assert list(StatusChange.objects.values_list("from_status", "to_status", "actor")) == [
        ("open", "answered", staff.pk)
    ]


def test_no_email_when_the_reply_is_rolled_back(customer: Any, staff: Any) -> None:
    # Outside a committed transaction the on-commit callback never runs.
    ticket = _open(customer)
    services.ticket_reply_staff(ticket=ticket, staff=staff, body="Hi", ticket_url="u")
    assert mail.outbox == []


def test_customer_reply_reopens_an_answered_or_closed_ticket(
    customer_client: Client, customer: Any, staff: Any
) -> None:
    ticket = _open(customer)
    services.ticket_reply_staff(ticket=ticket, staff=staff, body="Done", ticket_url="u", close=True)
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    response = customer_client.post(reverse("support:reply", args=[ticket.pk]), {"body": "Not done yet"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert ticket.messages.last().body == "Not done yet"  # type: ignore[union-attr]


def test_customer_closes_own_ticket(customer_client: Client, customer: Any) -> None:
    ticket = _open(customer)
    response = customer_client.post(reverse("support:close", args=[ticket.pk]))
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    follow = customer_client.get(response["Location"]).content.decode()
    assert "is closed" in follow
    # Closing twice is refused with a message and changes nothing.
    customer_client.post(reverse("support:close", args=[ticket.pk]))
    assert StatusChange.objects.count() == 1


def test_empty_reply_is_refused(customer_client: Client, customer: Any) -> None:
    ticket = _open(customer)
    response = customer_client.post(reverse("support:reply", args=[ticket.pk]), {"body": "  "})
    assert response.status_code == 400
    assert Message.objects.count() == 1


# --- ownership, methods, CSRF ------------------------------------------------------------------
def test_list_shows_only_own_tickets_and_an_empty_state(
    customer_client: Client, customer: Any, other_customer: Any
) -> None:
    body = customer_client.get(reverse("support:list")).content.decode()
    assert "You have no tickets yet" in body
    _open(customer, subject="Mine")
    _open(other_customer, subject="Theirs")
    body = customer_client.get(reverse("support:list")).content.decode()
    assert "Mine" in body and "Theirs" not in body
    assert "Mine" not in customer_client.get(reverse("support:list"), {"status": "closed"}).content.decode()


def test_another_customer_gets_404_everywhere(other_client: Client, customer: Any) -> None:
    ticket = _open(customer)
    before = _counts()
    assert other_client.get(reverse("support:detail", args=[ticket.pk])).status_code == 404
    assert other_client.post(reverse("support:reply", args=[ticket.pk]), {"body": "hi"}).status_code == 404
    assert other_client.post(reverse("support:close", args=[ticket.pk])).status_code == 404
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN and _counts() == before


def test_post_only_urls_refuse_get(customer_client: Client, customer: Any) -> None:
    ticket = _open(customer)
    assert customer_client.get(reverse("support:reply", args=[ticket.pk])).status_code == 405
    assert customer_client.get(reverse("support:close", args=[ticket.pk])).status_code == 405


def test_csrf_is_enforced(customer: Any) -> None:
    ticket = _open(customer)
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    before = _counts()
    assert client.post(reverse("support:new"), {"subject": "x", "kind": "other", "message": "y"}).status_code == 403
    assert client.post(reverse("support:reply", args=[ticket.pk]), {"body": "y"}).status_code == 403
    assert client.post(reverse("support:close", args=[ticket.pk])).status_code == 403
    assert _counts() == before


def test_visitors_are_sent_to_login(client: Client) -> None:
    for name in ("support:list", "support:new"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_hostile_text_in_a_ticket_is_escaped(customer_client: Client, customer: Any) -> None:
    ticket = _open(customer, subject="<script>alert(1)</script>", body="<img src=x onerror=alert(1)>")
    body = customer_client.get(reverse("support:detail", args=[ticket.pk])).content.decode()
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert "&lt;script&gt;" in body


# --- the admin ------------------------------------------------------------------------------
def test_staff_answer_from_the_admin_change_page(
    customer: Any, staff: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.STAFF_REQUIRE_MFA = False
    ticket = _open(customer, subject="Payment missing", kind="payment", body="<b>I paid</b>")
    client = Client()
    client.force_login(staff)
    url = reverse("admin:support_ticket_change", args=[ticket.pk])
    page = client.get(url).content.decode()
    assert "Payment missing" in page and "&lt;b&gt;I paid&lt;/b&gt;" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"reply": "We found it and credited you.", "_continue": "1"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.ANSWERED
    assert ticket.messages.last().author == staff  # type: ignore[union-attr]


def test_the_answer_email_links_to_the_configured_address_not_the_host_header(
    customer: Any, staff: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.STAFF_REQUIRE_MFA = False
    settings.ALLOWED_HOSTS = ["*"]
    settings.PANEL_BASE_URL = "https://panel.example"
    ticket = _open(customer, subject="Payment missing", kind="payment", body="I paid")
    client = Client(HTTP_HOST="evil.example")
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:support_ticket_change", args=[ticket.pk]), {"reply": "Found it.", "_continue": "1"})
    [email] = [m for m in mail.outbox if customer.email in m.to]
    assert "evil.example" not in email.body
    assert f"https://panel.example{reverse('support:detail', args=[ticket.pk])}" in email.body
    [email] = mail.outbox
    assert email.to == [customer.email]
    assert f"/tickets/{ticket.pk}/" in email.body


def test_admin_close_action(customer: Any, staff: Any, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = False
    tickets = [_open(customer), _open(customer)]
    client = Client()
    client.force_login(staff)
    client.post(
        reverse("admin:support_ticket_changelist"),
        {"action": "close_selected", "_selected_action": [t.pk for t in tickets]},
    )
    assert set(Ticket.objects.values_list("status", flat=True)) == {"closed"}
