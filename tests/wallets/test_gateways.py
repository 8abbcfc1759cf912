"""The gateway seam: the registry, staff settings over environment defaults, one card and
one URL per gateway, and a gateway added with nothing but a registry entry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
import responses
from django.http import HttpRequest
from django.template.loader import get_template
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from tests.wallets.conftest import checkout_event, stripe_signature
from tests.wallets.factories import BonusTierFactory, PaymentFactory
from wallets.gateways.base import (
    Checkout,
    DepositForm,
    Gateway,
    GatewayError,
    Kind,
    Notification,
    Report,
    SignatureError,
)
from wallets.gateways.registry import GATEWAYS, UnknownGateway, gateway_choices, gateway_get
from wallets.gateways.stripe import StripeGateway
from wallets.models import Entry, GatewaySetting, Payment
from wallets.selectors import gateway_config_get, gateway_config_list, wallet_balance
from wallets.services import WalletError, payment_fail, payment_settle, payment_start
from wallets.states import PaymentStatus

pytestmark = pytest.mark.django_db
D = Decimal
SESSIONS_URL = "https://api.stripe.com/v1/checkout/sessions"


def _state() -> tuple[list[tuple[Any, ...]], list[int]]:
    return list(Payment.objects.order_by("id").values_list("id", "status")), list(
        Entry.objects.values_list("id", flat=True)
    )


# --- The registry --------------------------------------------------------------------------


def test_the_registry_holds_manual_and_stripe():
    assert {"manual", "stripe"} <= set(GATEWAYS)
    assert isinstance(gateway_get("stripe"), StripeGateway)
    with pytest.raises(UnknownGateway):
        gateway_get("no-such-gateway")


@pytest.mark.parametrize("code", sorted(GATEWAYS))
def test_every_registered_gateway_fills_the_interface(code):
    gateway = GATEWAYS[code]
    assert gateway.code == code and len(code) <= 16 and code.isidentifier()
    assert gateway.label and gateway.button_label
    assert gateway.kind in set(Kind)
    assert issubclass(gateway.form_class, DepositForm) and "amount" in gateway.form_class.base_fields
    assert set(gateway.STATES.values()) <= set(PaymentStatus)
    if gateway.partial:
        get_template(gateway.partial)
    minimum, maximum = gateway.default_limits()
    assert D("0") < minimum <= maximum


def test_payment_and_setting_choices_come_from_the_registry():
    assert gateway_choices() == [(g.code, g.label) for g in GATEWAYS.values()]
    assert Payment._meta.get_field("gateway").choices == gateway_choices()
    assert GatewaySetting._meta.get_field("code").choices == gateway_choices()


# --- Staff settings over the environment's defaults ------------------------------------------


def test_without_settings_the_environment_decides(manual_on, stripe_on):
    configs = {c.code: c for c in gateway_config_list()}
    assert [c.code for c in gateway_config_list()] == ["stripe", "manual"]
    assert (configs["manual"].minimum, configs["manual"].maximum) == (D("1"), D("10000"))
    assert (configs["stripe"].minimum, configs["stripe"].maximum) == (D("5"), D("5000"))
    assert configs["stripe"].display_name == "Card (Stripe)"
    assert configs["manual"].fee_percent == D("0")


def test_stripe_without_secrets_is_off_and_staff_cannot_switch_it_on(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    GatewaySetting.objects.create(code="stripe", enabled=True)
    config = gateway_config_get(code="stripe")
    assert config is not None and not config.enabled
    assert "stripe" not in [c.code for c in gateway_config_list()]


def test_a_setting_overrides_name_limits_fee_and_order(manual_on, stripe_on):
    GatewaySetting.objects.create(
        code="manual", display_name="Bank transfer", min_amount=D("20"), fee_percent=D("2.5"), sort_order=1
    )
    configs = gateway_config_list()
    assert [c.code for c in configs] == ["manual", "stripe"]
    manual = configs[0]
    # An empty maximum keeps the environment's.
    assert (manual.display_name, manual.minimum, manual.maximum, manual.fee_percent) == (
        "Bank transfer",
        D("20"),
        D("10000"),
        D("2.5"),
    )
    assert gateway_config_get(code="nope") is None


def test_a_setting_with_the_minimum_above_the_default_maximum_is_invalid(manual_on):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        GatewaySetting(code="manual", min_amount=D("20000")).full_clean()


def test_staff_add_a_setting_in_the_admin(staff_client, manual_on):
    response = staff_client.post(
        reverse("admin:wallets_gatewaysetting_add"),
        {"code": "manual", "enabled": "", "display_name": "Bank", "fee_percent": "0"},
    )
    assert response.status_code == 302, response.content
    setting = GatewaySetting.objects.get()
    assert (setting.code, setting.enabled, setting.display_name) == ("manual", False, "Bank")
    assert staff_client.get(reverse("admin:wallets_gatewaysetting_changelist")).status_code == 200


# --- A gateway disabled in the admin -------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "url", "data"),
    [
        ("manual", "/wallet/add-funds/manual/", {"amount": "20", "reference": "TX"}),
        ("manual", "/wallet/deposit/manual/", {"amount": "20", "reference": "TX"}),
        ("stripe", "/wallet/add-funds/stripe/", {"amount": "20"}),
        ("stripe", "/wallet/deposit/stripe/", {"amount": "20"}),
    ],
)
def test_a_gateway_disabled_in_the_admin_leaves_the_page_and_refuses_posts(
    customer_client, customer, manual_on, stripe_on, code, url, data
):
    assert f'id="gateway-{code}"' in customer_client.get(reverse("wallets:add_funds")).content.decode()
    GatewaySetting.objects.create(code=code, enabled=False)
    html = customer_client.get(reverse("wallets:add_funds")).content.decode()
    assert f'id="gateway-{code}"' not in html
    assert f"/wallet/add-funds/{code}/" not in html
    assert customer_client.post(url, data).status_code == 404
    assert not Payment.objects.exists()
    with pytest.raises(WalletError):
        payment_start(user=customer, gateway=code, amount=D("20"), data=data)
    assert not Payment.objects.exists()


def test_stripe_disabled_in_the_admin_still_credits_money_it_took(customer, stripe_on):
    payment = PaymentFactory(user=customer, gateway="stripe", amount=D("25"), external_ref="cs_took")
    GatewaySetting.objects.create(code="stripe", enabled=False)
    payload = checkout_event(session_id="cs_took", payment_id=payment.pk, amount_minor=2500)
    response = Client().post(
        "/wallet/webhooks/stripe/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(payload),
    )
    assert response.status_code == 200
    assert wallet_balance(user=customer) == D("25")


# --- One card, one deposit URL, one webhook URL --------------------------------------------


def test_each_enabled_gateway_gets_one_card_with_its_own_fields(customer_client, manual_on, stripe_on):
    GatewaySetting.objects.create(code="stripe", display_name="Visa / Mastercard")
    html = customer_client.get(reverse("wallets:add_funds")).content.decode()
    assert html.count('class="card h-100"') == 2
    assert "Visa / Mastercard" in html and "Card (Stripe)" not in html.split("Payment history")[0]
    assert 'action="/wallet/add-funds/stripe/"' in html and 'action="/wallet/add-funds/manual/"' in html
    # Only the manual transfer asks for a reference.
    assert html.count('name="reference"') == 1 and 'id="manual-reference"' in html


def test_manual_deposit_through_the_gateway_url(customer_client, customer, manual_on):
    response = customer_client.post("/wallet/add-funds/manual/", {"amount": "20", "reference": "TX-9"})
    assert response.status_code == 302 and response["Location"] == reverse("wallets:add_funds")
    payment = Payment.objects.get()
    assert (payment.user, payment.gateway, payment.amount, payment.external_ref) == (
        customer,
        "manual",
        D("20"),
        "TX-9",
    )


def test_a_bad_form_comes_back_on_its_own_card(customer_client, manual_on, stripe_on):
    response = customer_client.post("/wallet/add-funds/manual/", {"amount": "20", "reference": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert html.count("is-invalid") == 1 and 'value="20"' in html
    assert not Payment.objects.exists()


def test_unknown_gateway_urls_are_404(customer_client, manual_on):
    assert customer_client.post("/wallet/add-funds/nowhere/", {"amount": "20"}).status_code == 404
    assert Client().post("/wallet/webhooks/nowhere/", data="{}", content_type="application/json").status_code == 404
    # Manual transfers take no notifications.
    assert Client().post("/wallet/webhooks/manual/", data="{}", content_type="application/json").status_code == 404
    assert not Payment.objects.exists()


def test_gateway_urls_need_login_post_and_csrf(client, customer, manual_on):
    url = "/wallet/add-funds/manual/"
    data = {"amount": "20", "reference": "r"}
    response = client.post(url, data)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(customer)
    assert csrf_client.post(url, data).status_code == 403
    assert csrf_client.get(url).status_code == 405
    assert Client().get("/wallet/webhooks/stripe/").status_code == 405
    assert not Payment.objects.exists()


def test_the_webhook_url_per_gateway_and_the_old_stripe_url_credit_once(customer, stripe_on):
    payment = PaymentFactory(user=customer, gateway="stripe", amount=D("25"), external_ref="cs_both")
    payload = checkout_event(session_id="cs_both", payment_id=payment.pk, amount_minor=2500)
    client = Client(enforce_csrf_checks=True)
    for url in ("/wallet/webhooks/stripe/", "/wallet/stripe/webhook/"):
        response = client.post(
            url, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=stripe_signature(payload)
        )
        assert response.status_code == 200
    assert wallet_balance(user=customer) == D("25")
    assert Entry.objects.count() == 1


# --- Fees ------------------------------------------------------------------------------------


@responses.activate
def test_a_fee_is_charged_on_top_and_the_chosen_amount_credited(customer, stripe_on):
    GatewaySetting.objects.create(code="stripe", fee_percent=D("2.5"))
    responses.post(SESSIONS_URL, json={"id": "cs_fee", "object": "checkout.session", "url": "https://stripe/x"})
    started = payment_start(user=customer, gateway="stripe", amount=D("40"), return_url="https://panel/wallet/")
    assert (started.payment.amount, started.payment.fee) == (D("40"), D("1.00"))
    body = responses.calls[0].request.body
    assert "line_items[0][price_data][unit_amount]=4100" in (body if isinstance(body, str) else body.decode())
    # Stripe reports the total paid; the customer is credited the amount they chose.
    payload = checkout_event(session_id="cs_fee", payment_id=started.payment.pk, amount_minor=4100)
    Client().post(
        "/wallet/webhooks/stripe/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(payload),
    )
    assert wallet_balance(user=customer) == D("40")


# --- Stripe's fetch --------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("session", "status"),
    [
        ({"payment_status": "paid", "status": "complete"}, PaymentStatus.PAID),
        ({"payment_status": "unpaid", "status": "open"}, PaymentStatus.PENDING),
        ({"payment_status": "unpaid", "status": "expired"}, PaymentStatus.FAILED),
    ],
)
def test_stripe_fetch_reads_the_session_and_maps_its_state(customer, stripe_on, session, status):
    payment = PaymentFactory(user=customer, gateway="stripe", amount=D("25"), external_ref="cs_read")
    body = {"id": "cs_read", "object": "checkout.session", "amount_total": 2500, "currency": "usd", **session}
    responses.get(f"{SESSIONS_URL}/cs_read", json=body)
    report = StripeGateway().fetch(payment=payment)
    assert report.status == status
    if status != PaymentStatus.FAILED:
        assert (report.amount, report.currency) == (D("25"), "USD")


@responses.activate
def test_stripe_fetch_failure_is_a_gateway_error(customer, stripe_on):
    payment = PaymentFactory(user=customer, gateway="stripe", external_ref="cs_gone")
    responses.get(f"{SESSIONS_URL}/cs_gone", status=404, json={"error": {"message": "No such session"}})
    with pytest.raises(GatewayError):
        StripeGateway().fetch(payment=payment)


# --- The settle and failure paths --------------------------------------------------------------


def test_settle_credits_deposit_bonus_and_commission_once(settings):
    BonusTierFactory(min_amount=D("50"), percent=D("10"))
    referrer = UserFactory(username="referrer")
    customer = UserFactory(username="buyer", referred_by=referrer)
    payment = PaymentFactory(user=customer, amount=D("100"))
    for _ in range(3):
        assert payment_settle(payment_id=payment.pk).status == PaymentStatus.PAID
    keys = sorted(Entry.objects.values_list("idempotency_key", "amount"))
    assert keys == [
        (f"payment:{payment.pk}:bonus", D("10")),
        (f"payment:{payment.pk}:commission", D("5")),
        (f"payment:{payment.pk}:deposit", D("100")),
    ]
    assert (wallet_balance(user=customer), wallet_balance(user=referrer)) == (D("110"), D("5"))


def test_a_failed_payment_settles_only_late(customer):
    payment = PaymentFactory(user=customer, amount=D("10"))
    payment_fail(payment_id=payment.pk, note="expired")
    with pytest.raises(WalletError):
        payment_settle(payment_id=payment.pk)
    assert not Entry.objects.exists()
    assert payment_settle(payment_id=payment.pk, late=True).status == PaymentStatus.PAID
    assert wallet_balance(user=customer) == D("10")


def test_failing_a_paid_payment_changes_nothing(customer):
    payment = PaymentFactory(user=customer, amount=D("10"))
    payment_settle(payment_id=payment.pk)
    before = _state()
    assert payment_fail(payment_id=payment.pk, note="late expiry").status == PaymentStatus.PAID
    with pytest.raises(WalletError):
        payment_fail(payment_id=payment.pk, note="staff", strict=True)
    assert _state() == before


# --- A new gateway is one class and one registry entry --------------------------------------


class FakeHostedGateway(Gateway):
    """A processor whose notifications only name the payment: the truth is read back."""

    code = "fakepay"
    label = "Fake Pay"
    kind = Kind.HOSTED
    button_label = "Pay with Fake Pay"
    STATES = {"settled": PaymentStatus.PAID, "expired": PaymentStatus.FAILED}
    remote: dict[str, str] = {}

    def start(self, *, payment: Payment, data: Mapping[str, Any], return_url: str) -> Checkout:
        self.remote[f"inv_{payment.pk}"] = "new"
        return Checkout(redirect_url=f"https://fakepay.test/i/inv_{payment.pk}", reference=f"inv_{payment.pk}")

    def verify_notification(self, request: HttpRequest) -> Notification:
        if request.headers.get("X-Fake-Signature") != "good":
            raise SignatureError("bad signature")
        body = json.loads(request.body)
        # Carries a claim we never trust: confirm() reads the invoice back.
        return Notification(
            event_id=body["id"], reference=body["invoice"], report=Report(status=PaymentStatus.PAID), raw=body
        )

    def confirm(self, *, payment: Payment, notification: Notification) -> Report | None:
        return self.fetch(payment=payment)

    def fetch(self, *, payment: Payment) -> Report:
        return Report(status=self.state(self.remote[payment.external_ref]), amount=payment.total, currency="USD")


@pytest.fixture
def fakepay(monkeypatch, manual_on):  # type: ignore[no-untyped-def]
    gateway = FakeHostedGateway()
    gateway.remote = {}
    monkeypatch.setitem(GATEWAYS, gateway.code, gateway)
    return gateway


def _notify(invoice: str, signature: str = "good") -> int:
    body = json.dumps({"id": "n1", "invoice": invoice})
    return (
        Client()
        .post("/wallet/webhooks/fakepay/", data=body, content_type="application/json", HTTP_X_FAKE_SIGNATURE=signature)
        .status_code
    )


def test_a_new_gateway_gets_its_card_its_urls_and_the_settle_path(customer_client, customer, fakepay):
    BonusTierFactory(min_amount=D("10"), percent=D("10"))
    html = customer_client.get(reverse("wallets:add_funds")).content.decode()
    assert "Fake Pay" in html and 'action="/wallet/add-funds/fakepay/"' in html
    response = customer_client.post("/wallet/add-funds/fakepay/", {"amount": "30"})
    payment = Payment.objects.get()
    assert response["Location"] == f"https://fakepay.test/i/inv_{payment.pk}"
    assert (payment.gateway, payment.external_ref) == ("fakepay", f"inv_{payment.pk}")

    assert _notify(payment.external_ref, signature="forged") == 400
    # The notification claims paid; the processor still says new: nothing moves.
    assert _notify(payment.external_ref) == 200
    assert wallet_balance(user=customer) == D("0")
    fakepay.remote[payment.external_ref] = "settled"
    assert _notify(payment.external_ref) == 200
    assert _notify(payment.external_ref) == 200
    assert wallet_balance(user=customer) == D("33")
    assert Entry.objects.filter(payment=payment).count() == 2


def test_a_new_gateways_expiry_goes_through_the_failure_path(customer, fakepay):
    started = payment_start(user=customer, gateway="fakepay", amount=D("30"), return_url="https://panel/wallet/")
    fakepay.remote[started.payment.external_ref] = "expired"
    assert _notify(started.payment.external_ref) == 200
    started.payment.refresh_from_db()
    assert started.payment.status == PaymentStatus.FAILED
    assert not Entry.objects.exists()


def test_staff_cannot_approve_a_hosted_gateways_payment(customer, staff, fakepay):
    from wallets.services import payment_approve

    payment = PaymentFactory(user=customer, gateway="fakepay", external_ref="inv_x")
    with pytest.raises(WalletError):
        payment_approve(payment_id=payment.pk, actor=staff)
    assert not Entry.objects.exists()
