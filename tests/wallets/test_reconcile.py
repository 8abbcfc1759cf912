"""Reconciliation against Stripe's list of Checkout Sessions, at the library's HTTP seam (responses)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from django.core import mail
from django.core.management import call_command

from tests.wallets.conftest import stripe_signature
from tests.wallets.factories import PaymentFactory
from wallets.audit import ledger_audit
from wallets.models import Entry, Payment
from wallets.reconcile import Difference, payments_reconcile
from wallets.selectors import wallet_balance, wallet_debt
from wallets.services import payment_settle
from wallets.states import PaymentStatus
from wallets.tasks import payments_reconcile_daily

pytestmark = pytest.mark.django_db
D = Decimal
SESSIONS_URL = "https://api.stripe.com/v1/checkout/sessions"


def session(
    session_id: str, *, amount_minor: int = 2500, payment_status: str = "paid", refunded: int = 0
) -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_total": amount_minor,
        "currency": "usd",
        "payment_status": payment_status,
        "status": "complete" if payment_status == "paid" else "open",
        "payment_intent": {
            "id": f"pi_{session_id}",
            "object": "payment_intent",
            "latest_charge": {
                "id": f"ch_{session_id}",
                "object": "charge",
                "amount": amount_minor,
                "amount_refunded": refunded,
                "currency": "usd",
            },
        },
    }


def listing(*sessions: dict[str, Any], has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "url": "/v1/checkout/sessions", "has_more": has_more, "data": list(sessions)}


def stripe_payment(user: Any, session_id: str, amount: str = "25") -> Payment:
    return PaymentFactory(user=user, gateway="stripe", amount=D(amount), external_ref=session_id)


@responses.activate
def test_finds_a_payment_paid_at_stripe_whose_notification_never_arrived_and_fix_credits_it_once(customer, stripe_on):
    lost = stripe_payment(customer, "cs_lost")
    pending = stripe_payment(customer, "cs_open")
    responses.get(SESSIONS_URL, json=listing(session("cs_lost"), session("cs_open", payment_status="unpaid")))

    found = payments_reconcile(gateway="stripe", days=3)

    assert [(f.payment_id, f.difference, f.fixed) for f in found.findings] == [
        (lost.pk, Difference.NOT_CREDITED, False)
    ]
    assert found.checked == 2
    assert wallet_balance(user=customer) == D("0")  # listing changes nothing

    fixed = payments_reconcile(gateway="stripe", days=3, fix=True)
    again = payments_reconcile(gateway="stripe", days=3, fix=True)

    assert [f.fixed for f in fixed.findings] == [True]
    assert again.findings == []
    lost.refresh_from_db()
    assert (lost.status, lost.charge_ref) == (PaymentStatus.PAID, "pi_cs_lost")
    assert wallet_balance(user=customer) == D("25")
    assert Entry.objects.filter(payment=lost, kind=Entry.Kind.DEPOSIT).count() == 1
    assert Payment.objects.get(pk=pending.pk).status == PaymentStatus.PENDING
    query = parse_qs(urlparse(responses.calls[0].request.url).query)
    assert "created[gte]" in query and query["expand[0]"] == ["data.payment_intent.latest_charge"]
    assert ledger_audit() == []


@responses.activate
def test_the_late_notification_after_a_fix_moves_nothing(customer, stripe_on, client):
    lost = stripe_payment(customer, "cs_lost")
    responses.get(SESSIONS_URL, json=listing(session("cs_lost")))
    payments_reconcile(gateway="stripe", fix=True)
    payload = json.dumps(
        {
            "id": "evt_late",
            "type": "checkout.session.completed",
            "data": {"object": {**session("cs_lost"), "client_reference_id": str(lost.pk)}},
        }
    )

    response = client.post(
        "/wallet/stripe/webhook/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(payload),
    )

    assert response.status_code == 200
    assert wallet_balance(user=customer) == D("25")
    assert Entry.objects.filter(payment=lost).count() == 1


@responses.activate
def test_finds_a_payment_credited_here_but_refunded_there_and_fix_reverses_it(customer, stripe_on):
    refunded = stripe_payment(customer, "cs_ref")
    payment_settle(payment_id=refunded.pk)
    responses.get(SESSIONS_URL, json=listing(session("cs_ref", refunded=1000)))

    listed = payments_reconcile(gateway="stripe")
    assert [(f.payment_id, f.difference) for f in listed.findings] == [(refunded.pk, Difference.NOT_REVERSED)]

    payments_reconcile(gateway="stripe", fix=True)
    assert payments_reconcile(gateway="stripe", fix=True).findings == []

    refunded.refresh_from_db()
    assert (refunded.status, refunded.reversed_amount) == (PaymentStatus.PARTLY_REFUNDED, D("10"))
    assert (wallet_balance(user=customer), wallet_debt(user=customer)) == (D("15"), D("0"))
    assert ledger_audit() == []


@responses.activate
def test_pages_through_the_whole_list(customer, stripe_on):
    first = stripe_payment(customer, "cs_1")
    second = stripe_payment(customer, "cs_2")
    responses.get(SESSIONS_URL, json=listing(session("cs_1"), has_more=True))
    responses.get(SESSIONS_URL, json=listing(session("cs_2")))

    found = payments_reconcile(gateway="stripe")

    assert sorted(f.payment_id for f in found.findings) == [first.pk, second.pk]
    assert parse_qs(urlparse(responses.calls[1].request.url).query)["starting_after"] == ["cs_1"]


@responses.activate
def test_an_amount_that_does_not_match_is_listed_and_never_credited(customer, stripe_on):
    odd = stripe_payment(customer, "cs_odd")
    responses.get(SESSIONS_URL, json=listing(session("cs_odd", amount_minor=100)))

    found = payments_reconcile(gateway="stripe", fix=True)

    assert [(f.difference, f.fixed) for f in found.findings] == [(Difference.MISMATCH, False)]
    assert Payment.objects.get(pk=odd.pk).status == PaymentStatus.PENDING
    assert not Entry.objects.exists()


@responses.activate
def test_the_command_lists_exits_1_on_open_differences_and_0_once_fixed(customer, stripe_on, capsys):
    stripe_payment(customer, "cs_lost")
    responses.get(SESSIONS_URL, json=listing(session("cs_lost")))

    with pytest.raises(SystemExit) as exited:
        call_command("payments_reconcile", "--gateway", "stripe", "--days", "2")
    assert exited.value.code == 1
    assert "paid there, not credited here" in capsys.readouterr().out

    call_command("payments_reconcile", "--gateway", "stripe", "--fix")
    assert "fixed" in capsys.readouterr().out
    call_command("payments_reconcile")
    assert wallet_balance(user=customer) == D("25")


@responses.activate
def test_a_gateway_that_does_not_answer_is_reported_and_nothing_changes(customer, stripe_on):
    stripe_payment(customer, "cs_lost")
    responses.get(SESSIONS_URL, status=500, json={"error": {"message": "down"}})

    found = payments_reconcile(gateway="stripe", fix=True)

    assert found.findings == [] and len(found.errors) == 1
    assert not Entry.objects.exists()


def test_gateways_that_cannot_list_are_skipped(customer, manual_on):
    found = payments_reconcile(gateway="manual")
    assert found.skipped == ["manual"] and found.findings == []


@responses.activate
def test_the_daily_task_mails_staff_what_it_found_and_fixes_nothing(customer, stripe_on, settings):
    settings.ADMINS = [("Staff", "staff@example.com")]
    stripe_payment(customer, "cs_lost")
    responses.get(SESSIONS_URL, json=listing(session("cs_lost")))

    assert payments_reconcile_daily() == 1

    assert len(mail.outbox) == 1
    assert "1 difference" in mail.outbox[0].subject
    assert "cs_lost" in mail.outbox[0].body and "--fix" in mail.outbox[0].body
    assert wallet_balance(user=customer) == D("0")


def test_the_daily_task_is_in_the_beat_schedule(settings):
    entries = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "wallets.tasks.payments_reconcile_daily" in entries


@responses.activate
def test_a_paid_payment_without_its_charge_learns_it_so_a_later_dispute_finds_it(customer, stripe_on):
    paid = stripe_payment(customer, "cs_old")
    payment_settle(payment_id=paid.pk)
    responses.get(SESSIONS_URL, json=listing(session("cs_old")))

    assert payments_reconcile(gateway="stripe").findings == []

    assert Payment.objects.get(pk=paid.pk).charge_ref == "pi_cs_old"
