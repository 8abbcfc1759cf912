"""Money that comes back: refunds, reversals, chargebacks and won disputes, and the debt they leave."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from django.test import Client

from panel.dashboard import dashboard_attention
from tests.wallets.conftest import checkout_event, stripe_signature
from tests.wallets.factories import PaymentFactory, fund
from wallets.audit import ledger_audit
from wallets.gateways.base import Notification, Report
from wallets.models import Entry, Payment, Wallet
from wallets.selectors import wallet_balance, wallet_debt
from wallets.services import payment_notify, payment_reverse, payment_settle, wallet_debit
from wallets.states import PaymentStatus

pytestmark = pytest.mark.django_db
D = Decimal
WEBHOOK = "/wallet/stripe/webhook/"
INTENT = "pi_test_1"


def stripe_event(event_type: str, obj: dict[str, Any], event_id: str = "evt_1") -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "api_version": "2025-01-01",
            "created": int(time.time()),
            "data": {"object": obj},
        }
    )


def dispute(status: str = "needs_response", amount: int = 2500, dispute_id: str = "dp_1") -> dict[str, Any]:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "currency": "usd",
        "charge": "ch_1",
        "payment_intent": INTENT,
        "reason": "fraudulent",
        "status": status,
    }


def charge_refunded(amount_refunded: int, amount: int = 2500) -> dict[str, Any]:
    return {
        "id": "ch_1",
        "object": "charge",
        "amount": amount,
        "amount_refunded": amount_refunded,
        "currency": "usd",
        "payment_intent": INTENT,
        "refunded": amount_refunded >= amount,
    }


def post(payload: str) -> Any:
    return Client().post(
        WEBHOOK, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=stripe_signature(payload)
    )


def paid_by_stripe(user: Any, amount: str = "25") -> Payment:
    """A Stripe payment paid through its webhook, which also remembers its PaymentIntent."""
    payment = PaymentFactory(user=user, gateway="stripe", amount=D(amount), external_ref="cs_1")
    body = json.loads(checkout_event(session_id="cs_1", payment_id=payment.pk, amount_minor=int(D(amount) * 100)))
    body["data"]["object"]["payment_intent"] = INTENT
    assert post(json.dumps(body)).status_code == 200
    payment.refresh_from_db()
    assert (payment.status, payment.charge_ref) == (PaymentStatus.PAID, INTENT)
    return payment


def spend(user: Any, amount: str) -> None:
    """Money leaves the balance (orders are tested in tests/orders/test_place.py)."""
    wallet_debit(
        user=user, amount=D(amount), kind=Entry.Kind.ADJUSTMENT, idempotency_key=f"spent:{uuid4().hex}", memo="spent"
    )


def books(user: Any) -> tuple[Decimal, Decimal]:
    return wallet_balance(user=user), wallet_debt(user=user)


def test_stripe_dispute_after_the_money_was_spent_leaves_the_customer_owing_it(customer, stripe_on):
    payment = paid_by_stripe(customer, "25")
    spend(customer, "20")

    assert post(stripe_event("charge.dispute.created", dispute())).status_code == 200

    assert books(customer) == (D("0"), D("20"))
    chargeback = Entry.objects.get(kind=Entry.Kind.CHARGEBACK)
    assert (chargeback.amount, chargeback.owed, chargeback.payment_id) == (D("-5"), D("20"), payment.pk)
    payment.refresh_from_db()
    assert (payment.status, payment.reversed_amount) == (PaymentStatus.REFUNDED, D("25"))
    assert ledger_audit() == []


def test_a_paypal_style_reversal_through_payment_notify_leaves_the_customer_owing_it(customer):
    payment = PaymentFactory(user=customer, gateway="stripe", amount=D("30"), external_ref="REF-1")
    payment_settle(payment_id=payment.pk)
    spend(customer, "25")
    reversal = Notification(
        event_id="WH-1",
        reference="REF-1",
        report=Report(status=PaymentStatus.REFUNDED, amount=D("30"), currency="USD", note="PayPal: reversed"),
    )

    payment_notify(gateway="stripe", notification=reversal)
    payment_notify(gateway="stripe", notification=reversal)  # replayed

    assert books(customer) == (D("0"), D("25"))
    assert Entry.objects.filter(kind=Entry.Kind.REVERSAL).count() == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert ledger_audit() == []


def test_the_next_deposit_pays_the_debt_first(customer, stripe_on):
    paid_by_stripe(customer, "25")
    spend(customer, "20")
    post(stripe_event("charge.dispute.created", dispute()))
    assert books(customer) == (D("0"), D("20"))

    deposit = PaymentFactory(user=customer, gateway="manual", amount=D("50"))
    payment_settle(payment_id=deposit.pk)
    payment_settle(payment_id=deposit.pk)

    assert books(customer) == (D("30"), D("0"))
    paid_off = Entry.objects.get(kind=Entry.Kind.DEBT_PAYMENT)
    assert (paid_off.amount, paid_off.owed, paid_off.idempotency_key) == (
        D("-20"),
        D("-20"),
        f"payment:{deposit.pk}:debt",
    )
    assert ledger_audit() == []


def test_a_deposit_smaller_than_the_debt_pays_what_it_can(customer):
    payment = PaymentFactory(user=customer, amount=D("40"))
    payment_settle(payment_id=payment.pk)
    spend(customer, "40")
    payment_reverse(payment_id=payment.pk, amount=D("40"), kind="chargeback", reason="dispute", reference="dp_9")

    small = PaymentFactory(user=customer, amount=D("15"))
    payment_settle(payment_id=small.pk)

    assert books(customer) == (D("0"), D("25"))
    assert ledger_audit() == []


def test_replayed_and_out_of_order_refund_notifications_move_money_once(customer, stripe_on):
    payment = paid_by_stripe(customer, "25")

    post(stripe_event("charge.refunded", charge_refunded(1000), event_id="evt_r1"))
    post(stripe_event("charge.refunded", charge_refunded(1000), event_id="evt_r1"))  # replay
    assert books(customer) == (D("15"), D("0"))
    payment.refresh_from_db()
    assert (payment.status, payment.reversed_amount) == (PaymentStatus.PARTLY_REFUNDED, D("10"))

    post(stripe_event("charge.refunded", charge_refunded(1500), event_id="evt_r2"))  # a second refund of 5
    post(stripe_event("charge.refunded", charge_refunded(1000), event_id="evt_r1"))  # the first, late again
    assert books(customer) == (D("10"), D("0"))
    assert sorted(Entry.objects.filter(kind=Entry.Kind.REVERSAL).values_list("amount", flat=True)) == [
        D("-10"),
        D("-5"),
    ]
    assert ledger_audit() == []


def test_refunds_never_take_back_more_than_was_credited(customer):
    payment = PaymentFactory(user=customer, amount=D("10"))
    payment_settle(payment_id=payment.pk)

    payment_reverse(payment_id=payment.pk, amount=D("8"), kind="reversal", reason="r", reference="re_1")
    payment_reverse(payment_id=payment.pk, amount=D("8"), kind="reversal", reason="r", reference="re_2")
    payment_reverse(payment_id=payment.pk, amount=D("8"), kind="chargeback", reason="r", reference="dp_1")

    payment.refresh_from_db()
    assert (payment.status, payment.reversed_amount) == (PaymentStatus.REFUNDED, D("10"))
    assert books(customer) == (D("0"), D("0"))
    assert ledger_audit() == []


def test_a_refund_for_a_payment_never_credited_moves_nothing(customer):
    payment = PaymentFactory(user=customer, gateway="stripe", amount=D("10"), external_ref="REF-2")
    before = list(Entry.objects.values_list("id", flat=True))
    payment_notify(
        gateway="stripe",
        notification=Notification(
            event_id="WH-2", reference="REF-2", report=Report(status=PaymentStatus.REFUNDED, amount=D("10"))
        ),
    )
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert "nothing was credited" in payment.note
    assert list(Entry.objects.values_list("id", flat=True)) == before


def test_a_won_dispute_reinstates_the_funds_and_clears_the_debt_first(customer, stripe_on):
    payment = paid_by_stripe(customer, "25")
    spend(customer, "20")
    post(stripe_event("charge.dispute.created", dispute()))
    assert books(customer) == (D("0"), D("20"))

    post(stripe_event("charge.dispute.closed", dispute(status="won"), event_id="evt_c"))
    post(stripe_event("charge.dispute.funds_reinstated", dispute(status="won"), event_id="evt_f"))

    assert books(customer) == (D("5"), D("0"))
    reinstated = Entry.objects.get(kind=Entry.Kind.REINSTATEMENT)
    assert (reinstated.amount, reinstated.owed) == (D("5"), D("-20"))
    payment.refresh_from_db()
    assert (payment.status, payment.reversed_amount) == (PaymentStatus.PAID, D("0"))
    assert ledger_audit() == []


def test_a_lost_dispute_takes_nothing_more(customer, stripe_on):
    paid_by_stripe(customer, "25")
    post(stripe_event("charge.dispute.created", dispute()))
    entries = Entry.objects.count()

    post(stripe_event("charge.dispute.closed", dispute(status="lost"), event_id="evt_c"))

    assert Entry.objects.count() == entries
    assert books(customer) == (D("0"), D("0"))
    assert ledger_audit() == []


def test_the_audit_finds_a_debt_the_entries_do_not_explain(customer):
    fund(customer, "5")
    Wallet.objects.filter(user=customer).update(debt=D("3"))
    assert any("debt 3.00000 but the entries owe 0.00000" in line for line in ledger_audit())


def test_the_audit_finds_a_payment_whose_reversals_exceed_what_it_credited(customer):
    payment = PaymentFactory(user=customer, amount=D("10"))
    payment_settle(payment_id=payment.pk)
    payment_reverse(payment_id=payment.pk, amount=D("4"), kind="reversal", reason="r", reference="re_1")
    Payment.objects.filter(pk=payment.pk).update(credited=D("3"), reversed_amount=D("4"))
    assert any(f"payment {payment.pk}: the ledger took back 4.00000" in line for line in ledger_audit())


def test_the_balance_page_shows_what_the_customer_owes(customer, customer_client):
    payment = PaymentFactory(user=customer, amount=D("10"))
    payment_settle(payment_id=payment.pk)
    spend(customer, "10")
    payment_reverse(payment_id=payment.pk, amount=D("10"), kind="chargeback", reason="dispute", reference="dp_1")

    page = customer_client.get("/wallet/").content.decode()
    assert "You owe" in page
    assert "10.00" in page


def test_an_inquiry_withdraws_nothing_and_funds_withdrawn_after_created_takes_once(customer, stripe_on):
    paid_by_stripe(customer, "25")
    post(stripe_event("charge.dispute.created", dispute(status="warning_needs_response", dispute_id="dp_w")))
    assert books(customer) == (D("25"), D("0"))

    post(stripe_event("charge.dispute.created", dispute(amount=1000), event_id="evt_a"))
    post(stripe_event("charge.dispute.funds_withdrawn", dispute(amount=1000), event_id="evt_b"))
    assert books(customer) == (D("15"), D("0"))
    assert ledger_audit() == []


def test_the_payment_page_shows_what_was_taken_back_with_signed_amounts(customer, customer_client):
    payment = PaymentFactory(user=customer, gateway="stripe", amount=D("10"), external_ref="cs_shown")
    payment_settle(payment_id=payment.pk)
    spend(customer, "6")
    payment_reverse(payment_id=payment.pk, amount=D("10"), kind="chargeback", reason="dispute", reference="dp_1")

    page = customer_client.get(f"/wallet/payments/{payment.pk}/").content.decode()

    assert "cs_shown" in page and "Refunded" in page
    assert "-4.00000" in page and "(6.00 owed)" in page and "+-" not in page


def test_another_customers_payment_page_is_404(customer, other_customer, customer_client):
    payment = PaymentFactory(user=other_customer, gateway="stripe", amount=D("10"), external_ref="cs_theirs")
    assert customer_client.get(f"/wallet/payments/{payment.pk}/").status_code == 404


def test_the_transactions_page_says_what_a_chargeback_left_owed(customer, customer_client):
    payment = PaymentFactory(user=customer, amount=D("10"))
    payment_settle(payment_id=payment.pk)
    spend(customer, "10")
    payment_reverse(payment_id=payment.pk, amount=D("10"), kind="chargeback", reason="dispute", reference="dp_1")

    page = customer_client.get("/wallet/transactions/").content.decode()

    assert "Chargeback" in page or "chargeback" in page
    assert "(10.00 owed)" in page


def test_the_staff_dashboard_lists_customers_who_owe(customer):
    payment = PaymentFactory(user=customer, amount=D("10"))
    payment_settle(payment_id=payment.pk)
    spend(customer, "7")
    payment_reverse(payment_id=payment.pk, amount=D("10"), kind="chargeback", reason="dispute", reference="dp_1")

    [owing] = [item for item in dashboard_attention() if item.key == "owing"]

    assert owing.count == 1
    assert owing.rows == [f"{customer} owes 7.00"]
    assert "owes=yes" in owing.admin_url


def test_a_reversal_in_another_currency_takes_back_the_converted_credit(customer):
    payment = PaymentFactory(user=customer, gateway="stripe", amount=D("20"), external_ref="INV-1")
    payment_settle(payment_id=payment.pk)
    report = Report(status=PaymentStatus.REFUNDED, amount=D("0.0003"), currency="BTC", credit=D("12.5"), note="back")

    payment_notify(gateway="stripe", notification=Notification(event_id="ipn-1", reference="INV-1", report=report))

    assert books(customer) == (D("7.5"), D("0"))
    payment.refresh_from_db()
    assert (payment.status, payment.reversed_amount) == (PaymentStatus.PARTLY_REFUNDED, D("12.5"))
