"""A staff member who may only look changes nothing through the admin.

The walks below are built from `admin.site._registry` when the tests are collected: every
action of every registered model admin (as a superuser sees them) and every page an admin
adds with `get_urls`, so an action or page added later is walked without touching this
file. Each one is posted by a staff member holding every `view_*` permission and nothing
else, against a database with a row of every model in a state the action would act on,
and the whole database must read the same afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse
from django.utils import timezone

from accounts.models import Impersonation, User
from accounts.services import api_key_issue
from catalog.models import CustomRate, PanelSettings, PriceChange, Service, TextChange
from catalog.services import panel_settings_get
from content.models import NewsPost, Page
from currencies.models import Currency, RateChange
from orders.models import Order, OrderEvent, State, Status
from orders.services import RESOLVE_CANCEL, order_place, order_transition
from providers.models import Provider, ProviderCall, UpstreamService
from providers.services import provider_pause
from simulators.provider import Simulator
from simulators.rates import RatesSimulator
from siteconf.selectors import site_settings_row
from support.models import Status as TicketStatus
from support.models import Ticket
from support.services import ticket_open
from tests.factories import ProviderFactory, RouteFactory, ServiceFactory, UpstreamServiceFactory, UserFactory
from tests.wallets.factories import BonusTierFactory, PaymentFactory, fund
from wallets.models import Affiliate, Entry, GatewaySetting, Payment
from wallets.selectors import wallet_balance
from wallets.services import payment_reverse, payment_settle, wallet_debit
from webhooks.models import Delivery
from webhooks.models import Event as WebhookEvent
from webhooks.services import ORDER_UPDATED, NewEvent, endpoint_save, webhook_events_record

pytestmark = pytest.mark.django_db
D = Decimal
LINK = "https://instagram.com/p/permissions"

# Everything the admin can reach: the snapshot compares every row of these apps.
SNAPSHOT_APPS = {
    "admin",
    "auth",
    "account",
    "mfa",
    "siteconf",
    "accounts",
    "currencies",
    "providers",
    "catalog",
    "wallets",
    "orders",
    "support",
    "content",
    "webhooks",
}


def _superuser_request() -> Any:
    request = RequestFactory().get("/")
    request.user = User(username="root", is_staff=True, is_superuser=True, is_active=True)
    return request


def _registered() -> list[tuple[type[Model], admin.ModelAdmin]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _admin_of(label: str) -> admin.ModelAdmin:
    return admin.site._registry[apps.get_model(label)]


ACTIONS = [
    pytest.param(model._meta.label, name, id=f"{model._meta.label}.{name}")
    for model, model_admin in _registered()
    for name in model_admin.get_actions(_superuser_request())
]


def _custom_urls() -> list[tuple[str, URLPattern]]:
    """The pages an admin adds to Django's own (changelist, add, history, delete, change)."""
    found = []
    for model, model_admin in _registered():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        standard = {f"{info}_{page}" for page in ("changelist", "add", "history", "delete", "change")}
        for pattern in model_admin.get_urls():
            if isinstance(pattern, URLPattern) and pattern.name and pattern.name not in standard:
                found.append((model._meta.label, pattern))
    return found


CUSTOM_URLS = [pytest.param(label, pattern.name, id=pattern.name) for label, pattern in _custom_urls()]


# --- The world: a row of every admin model, in states the actions act on -----------------------
def pks(model: type[Model]) -> list[Any]:
    return list(model._base_manager.order_by("pk").values_list("pk", flat=True))


@pytest.fixture(autouse=True)
def _admin_without_mfa_and_loopback_providers(settings: Any) -> None:
    # The MFA guard would redirect every admin request and make a refusal look like a pass.
    settings.STAFF_REQUIRE_MFA = False
    settings.PROVIDERS_ALLOW_PRIVATE_URLS = True  # the simulator listens on 127.0.0.1
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def world(db: Any, simulator: Simulator, customer: User, request: Any, settings: Any) -> dict[str, Any]:
    panel_settings_get()
    # A rates source whose GBP moved too far from the current rate, and a rate held for review.
    rates = RatesSimulator().start()
    request.addfinalizer(rates.stop)
    settings.CURRENCY_RATES_URL = f"{rates.base_url}/api/latest.json"
    settings.CURRENCY_RATES_API_KEY = rates.api_key
    settings.CURRENCY_RATES_ALLOW_PRIVATE_URL = True
    gbp = Currency.objects.create(
        code="GBP", name="Pound sterling", rate=D("0.5"), updated_at=timezone.now(), held_rate=D("0.75")
    )
    RateChange.objects.create(currency=gbp, old_rate=D("0.5"), new_rate=D("0.75"), source="automatic", status="held")
    Group.objects.create(name="support")
    EmailAddress.objects.create(user=customer, email=customer.email, primary=True, verified=False)
    Authenticator.objects.create(user=customer, type=Authenticator.Type.RECOVERY_CODES, data={"seed": "00"})
    api_key_issue(user=customer)
    Affiliate.objects.create(user=customer, code="friend")
    BonusTierFactory()

    provider = ProviderFactory(api_url=simulator.url, api_key="test-key")
    external = simulator.add_service(name="Followers", type="Default", rate="1.00", min=10, max=10000)
    upstream = UpstreamServiceFactory(provider=provider, external_id=str(external), rate=D("1.00"))
    unsold = simulator.add_service(name="Likes", type="Default", rate="2.00", min=10, max=10000)
    UpstreamServiceFactory(provider=provider, external_id=str(unsold), rate=D("2.00"))
    service = ServiceFactory(allow_duplicate_link=True)
    RouteFactory(service=service, upstream=upstream)

    fund(customer, "100")
    orders = [
        order_place(user=customer, service_id=service.pk, fields={"link": LINK, "quantity": "1000"}) for _ in range(3)
    ]
    queued, unknown, sent = orders
    order_transition(order=unknown, state=State.SENDING, reason="test")
    order_transition(order=unknown, state=State.UNKNOWN, reason="test: read timeout")
    order_transition(order=sent, state=State.SENDING, reason="test")
    order_transition(order=sent, state=State.SENT, reason="test", changes={"provider_order_id": "555"})
    sent.refills.create(user=customer, provider=provider)
    sent.cancel_requests.create(user=customer, provider=provider)

    # A price the catalogue rule would recompute, and an upstream rise held for approval.
    Service.objects.filter(pk=service.pk).update(price=D("9.000000"), held_price=D("2.600000"), held_cost=D("2.0"))
    PriceChange.objects.create(
        service=service,
        old_price=D("1.3"),
        new_price=D("2.6"),
        old_cost=D("1"),
        new_cost=D("2"),
        status=PriceChange.Status.HELD,
        reason="upstream rate doubled",
    )
    ProviderCall.objects.create(
        provider=provider, action="balance", started_at=timezone.now(), duration_ms=5, outcome="ok"
    )
    provider_pause(provider=provider, reason="Not enough funds")
    PaymentFactory(user=customer, amount=D("30"))
    GatewaySetting.objects.create(code="manual", display_name="Bank transfer")
    ticket_open(user=customer, subject="Where is my order?", kind="other", body="It has not started.")
    UserFactory(username="blocked", is_active=False, blocked_reason="chargebacks")
    site_settings_row()
    Page.objects.create(slug="terms", title="Terms", body="Be nice.")
    NewsPost.objects.create(title="Maintenance tonight", is_announcement=True)
    endpoint_save(user=customer, url="http://127.0.0.1:9/hook")
    webhook_events_record(
        events=[NewEvent(user_id=customer.pk, type=ORDER_UPDATED, order_ref=sent.pk, data={"order": sent.pk})]
    )
    event = WebhookEvent.objects.get()
    WebhookEvent.objects.filter(pk=event.pk).update(state="failed")
    Delivery.objects.create(event=event, endpoint=event.endpoint, attempt=1, url="http://127.0.0.1:9/hook", error="x")
    transfer = Payment.objects.get()  # the pending manual transfer above
    CustomRate.objects.create(user=customer, service=service, markup_percent=Decimal("10"))
    TextChange.objects.create(service=service, upstream=upstream, field="description", old_text="Real", new_text="Bots")
    Impersonation.objects.create(
        staff=UserFactory(username="support-person", is_staff=True), customer=customer, expires_at=timezone.now()
    )
    # A customer who owes a chargeback (a debt staff may forgive).
    owing = UserFactory(username="owing")
    owed = PaymentFactory(user=owing, gateway="stripe", amount=D("20"), external_ref="cs_owing")
    payment_settle(payment_id=owed.pk)
    wallet_debit(user=owing, amount=D("20"), kind="adjustment", idempotency_key="owing:spent", memo="spent")
    payment_reverse(payment_id=owed.pk, amount=D("20"), kind="chargeback", reason="dispute", reference="dp_w")
    return {
        "provider": provider,
        "service": service,
        "queued": queued,
        "unknown": unknown,
        "sent": sent,
        "transfer": transfer,
    }


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values_list())
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in SNAPSHOT_APPS
    }


def changes(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    return [label for label in before if before[label] != after[label]]


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(db: Any) -> User:
    """Staff who may look at everything and change nothing."""
    user = UserFactory(username="viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


def granted(user: User, *perms: str) -> Client:
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return _client(User.objects.get(pk=user.pk))  # a fresh object: permissions are cached


def _request_as(user: User) -> Any:
    request = RequestFactory().get("/")
    request.user = User.objects.get(pk=user.pk)
    return request


def post_action(client: Client, label: str, action: str, selected: list[Any]) -> list[int]:
    """The action as the changelist's form sends it, and as a confirmation page sends it."""
    model = apps.get_model(label)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    data = {
        "action": action,
        ACTION_CHECKBOX_NAME: selected,
        # What the confirmation steps ask for: resend/cancel ("confirm"), import ("apply"),
        # delete ("post").
        "confirm": "yes",
        "reason": "walked by a test",
        "apply": "1",
        "post": "yes",
    }
    return [
        client.post(url, {**data, "index": "0"}).status_code,
        client.post(url, data).status_code,
    ]


# --- 1. Every action ---------------------------------------------------------------------------
def test_the_walk_sees_the_actions_that_move_money_and_state():
    walked = {f"{p.values[0]}.{p.values[1]}" for p in ACTIONS}
    assert {
        "orders.Order.cancel_and_refund",
        "orders.Order.resend_unknown",
        "orders.Order.mark_completed",
        "providers.Provider.resume",
        "catalog.Service.approve_held",
        "wallets.Payment.approve_selected",
        "support.Ticket.close_selected",
        "account.EmailAddress.make_verified",
    } <= walked


def test_the_world_has_a_row_of_every_model_in_the_admin(world):
    empty = [model._meta.label for model, _ in _registered() if not model._base_manager.exists()]
    assert empty == []


@pytest.mark.parametrize(("label", "action"), ACTIONS)
def test_view_only_staff_cannot_run_the_action(world, viewer, label, action):
    model_admin = _admin_of(label)
    assert action not in model_admin.get_actions(_request_as(viewer))
    client = _client(viewer)
    model = apps.get_model(label)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert client.get(url).status_code == 200  # the viewer gets in: the refusal is the permission's
    before = snapshot()
    statuses = post_action(client, label, action, pks(model))
    assert set(statuses) <= {200, 302, 403}
    assert changes(before, snapshot()) == []


# Actions that only open a form (the form's page is walked below).
OPENS_A_FORM = {
    "wallets.Wallet.adjust_funds",
    "catalog.Service.set_custom_rate",
    "wallets.Wallet.forgive_debt",
    "orders.Order.resolve_unknown_bulk",
    "orders.Refill.resolve_unknown",
    "orders.CancelRequest.resolve_unknown",
}


@pytest.mark.parametrize(
    ("label", "action"),
    [p for p in ACTIONS if p.values[1] != "delete_selected" and f"{p.values[0]}.{p.values[1]}" not in OPENS_A_FORM],
)
def test_the_same_request_from_a_superuser_changes_something(world, staff, label, action):
    """The walk above proves something: in this world, each action has rows to act on."""
    before = snapshot()
    post_action(_client(staff), label, action, pks(apps.get_model(label)))
    assert changes(before, snapshot()) != []


# --- 2. Every page an admin adds ---------------------------------------------------------------
# Per page: the row it is about, and a body that would change something if allowed.
PAGE_REQUESTS: dict[str, tuple[Callable[[dict[str, Any]], Any], dict[str, str]]] = {
    "wallets_wallet_adjust": (
        lambda w: None,
        {"user": "customer", "amount": "50", "reason": "walked by a test", "key": "adjust:" + "0" * 32},
    ),
    "wallets_wallet_forgive": (
        lambda w: None,
        {"user": "owing", "reason": "walked by a test", "key": "forgive:" + "0" * 32},
    ),
    "orders_order_resolve": (lambda w: w["unknown"], {"resolution": RESOLVE_CANCEL}),
    "orders_order_partial": (lambda w: w["sent"], {"remains": "500"}),
    "wallets_payment_review": (lambda w: w["transfer"], {"decision": "approve"}),
    "accounts_user_impersonate": (lambda w: w["sent"].user, {}),
    "auth_user_password_change": (
        lambda w: w["sent"].user,
        {"password1": "A-new-pass-phrase-42", "password2": "A-new-pass-phrase-42"},
    ),
}


def _page_url(name: str, world: dict[str, Any]) -> str:
    pattern = next(p for _, p in _custom_urls() if p.name == name)
    target = PAGE_REQUESTS[name][0](world)
    kwargs = dict.fromkeys(pattern.pattern.converters, target.pk) if target is not None else {}
    return reverse(f"admin:{name}", kwargs=kwargs)


# Pages that only show (GET); every role may look at everything.
READ_ONLY_PAGES = {"panel_customer"}
WALKED_PAGES = [p for p in CUSTOM_URLS if p.values[1] not in READ_ONLY_PAGES]


def test_every_added_admin_page_has_a_request_to_walk():
    assert {p.values[1] for p in CUSTOM_URLS} <= set(PAGE_REQUESTS) | READ_ONLY_PAGES, (
        "add the new page to PAGE_REQUESTS"
    )


def test_read_only_pages_show_to_viewers_and_take_no_post(world, viewer, customer):
    client = _client(viewer)
    url = reverse("admin:panel_customer", args=[customer.pk])
    before = snapshot()
    assert client.get(url).status_code == 200
    assert client.post(url, {"decision": "approve"}).status_code == 405
    assert changes(before, snapshot()) == []


@pytest.mark.parametrize(("label", "name"), WALKED_PAGES)
def test_view_only_staff_are_refused_by_every_added_admin_page(world, viewer, label, name):
    client = _client(viewer)
    url = _page_url(name, world)
    before = snapshot()
    assert client.get(url).status_code == 403
    assert client.post(url, PAGE_REQUESTS[name][1]).status_code == 403
    assert changes(before, snapshot()) == []


@pytest.mark.parametrize(("label", "name"), WALKED_PAGES)
def test_the_same_page_request_from_a_superuser_changes_something(world, staff, label, name):
    before = snapshot()
    response = _client(staff).post(_page_url(name, world), PAGE_REQUESTS[name][1])
    assert response.status_code == 302
    assert changes(before, snapshot()) != []


MODELS = [pytest.param(model._meta.label, id=model._meta.label) for model, _ in _registered()]


@pytest.mark.parametrize("label", MODELS)
def test_view_only_staff_cannot_add_change_or_delete_through_django_pages(world, viewer, label):
    model = apps.get_model(label)
    info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    pk = pks(model)[0]
    client = _client(viewer)
    assert client.get(reverse(f"{info}_change", args=[pk])).status_code == 200
    # A ticket reply that closes, new markups: what a change form would save.
    data = {
        "reply": "walked by a test",
        "close_after_reply": "on",
        "markup_percent": "90",
        "default_markup_percent": "90",
        "price_jump_threshold_percent": "1",
        "post": "yes",
    }
    before = snapshot()
    assert client.post(reverse(f"{info}_add"), data).status_code == 403
    assert client.post(reverse(f"{info}_change", args=[pk]), data).status_code == 403
    assert client.post(reverse(f"{info}_delete", args=[pk]), data).status_code == 403
    assert changes(before, snapshot()) == []


def test_view_only_staff_cannot_create_the_missing_panel_settings(viewer):
    PanelSettings.objects.all().delete()
    data = {"default_markup_percent": "-99", "price_jump_threshold_percent": "1000"}
    response = _client(viewer).post(reverse("admin:catalog_panelsettings_add"), data)
    assert response.status_code == 403
    assert not PanelSettings.objects.exists()


# --- 3. With the permission, the action runs ---------------------------------------------------
def test_cancel_and_refund_needs_refund_order_and_then_refunds(world, viewer):
    order = world["queued"]
    balance = wallet_balance(user=order.user)
    client = _client(viewer)
    post_action(client, "orders.Order", "cancel_and_refund", [order.pk])
    assert wallet_balance(user=order.user) == balance

    client = granted(viewer, "orders.refund_order")
    assert set(_admin_of("orders.Order").get_actions(_request_as(viewer))) == {"cancel_and_refund"}
    post_action(client, "orders.Order", "cancel_and_refund", [order.pk])
    order.refresh_from_db()
    assert order.status == Status.CANCELED
    assert wallet_balance(user=order.user) == balance + order.charge
    assert Entry.objects.filter(order_ref=order.pk, kind="refund").count() == 1
    assert order.events.last().actor == viewer


def test_mark_completed_needs_complete_order(world, viewer):
    order = world["sent"]
    client = granted(viewer, "orders.refund_order")  # another permission does not do
    post_action(client, "orders.Order", "mark_completed", [order.pk])
    assert Order.objects.get(pk=order.pk).status == Status.PENDING
    post_action(granted(viewer, "orders.complete_order"), "orders.Order", "mark_completed", [order.pk])
    assert Order.objects.get(pk=order.pk).status == Status.COMPLETED


def test_resume_needs_resume_provider(world, viewer):
    provider = world["provider"]
    post_action(_client(viewer), "providers.Provider", "resume", [provider.pk])
    assert Provider.objects.get(pk=provider.pk).paused_reason == "Not enough funds"
    post_action(granted(viewer, "providers.resume_provider"), "providers.Provider", "resume", [provider.pk])
    assert Provider.objects.get(pk=provider.pk).paused_reason == ""


def test_approving_a_held_price_needs_approve_price(world, viewer):
    service = world["service"]
    post_action(granted(viewer, "catalog.reprice_service"), "catalog.Service", "approve_held", [service.pk])
    assert Service.objects.get(pk=service.pk).held_price == D("2.6")
    post_action(granted(viewer, "catalog.approve_price"), "catalog.Service", "approve_held", [service.pk])
    service.refresh_from_db()
    assert (service.price, service.held_price) == (D("2.6"), None)


def test_syncing_and_testing_a_provider_need_sync_provider(world, viewer):
    provider = world["provider"]
    for action in ("test_connection", "sync_services"):
        post_action(granted(viewer, "providers.resume_provider"), "providers.Provider", action, [provider.pk])
    assert not ProviderCall.objects.filter(provider=provider).exclude(action="balance").exists()
    assert Provider.objects.get(pk=provider.pk).balance is None
    client = granted(viewer, "providers.sync_provider")
    post_action(client, "providers.Provider", "test_connection", [provider.pk])
    assert Provider.objects.get(pk=provider.pk).balance is not None
    post_action(client, "providers.Provider", "sync_services", [provider.pk])
    assert Provider.objects.get(pk=provider.pk).last_synced_at is not None


def test_importing_upstream_services_needs_import_service(world, viewer):
    unsold = UpstreamService.objects.filter(routes__isnull=True).get()
    post_action(_client(viewer), "providers.UpstreamService", "import_into_catalog", [unsold.pk])
    assert not unsold.routes.exists()
    post_action(
        granted(viewer, "catalog.import_service"), "providers.UpstreamService", "import_into_catalog", [unsold.pk]
    )
    assert Service.objects.get(routes__upstream=unsold).name == unsold.name


def test_closing_tickets_needs_the_ticket_change_permission(world, viewer):
    ticket = Ticket.objects.get()
    post_action(_client(viewer), "support.Ticket", "close_selected", [ticket.pk])
    assert Ticket.objects.get().status == TicketStatus.OPEN
    post_action(granted(viewer, "support.change_ticket"), "support.Ticket", "close_selected", [ticket.pk])
    assert Ticket.objects.get().status == TicketStatus.CLOSED


def test_resolve_and_partial_pages_need_their_permissions(world, viewer):
    unknown, sent = world["unknown"], world["sent"]
    resolve = reverse("admin:orders_order_resolve", args=[unknown.pk])
    partial = reverse("admin:orders_order_partial", args=[sent.pk])
    client = granted(viewer, "orders.change_order", "orders.complete_order")
    assert client.post(resolve, {"resolution": RESOLVE_CANCEL}).status_code == 403
    assert client.post(partial, {"remains": "500"}).status_code == 403
    change = client.get(reverse("admin:orders_order_change", args=[sent.pk])).content.decode()
    assert partial not in change  # no button for a page that would refuse

    client = granted(viewer, "orders.resolve_unknown_order", "orders.refund_order")
    assert client.post(resolve, {"resolution": RESOLVE_CANCEL}).status_code == 302
    assert Order.objects.get(pk=unknown.pk).status == Status.CANCELED
    assert partial in client.get(reverse("admin:orders_order_change", args=[sent.pk])).content.decode()
    assert client.post(partial, {"remains": "500"}).status_code == 302
    assert Order.objects.get(pk=sent.pk).status == Status.PARTIAL


def test_manual_payments_need_review_payment(world, viewer):
    payment = Payment.objects.get(gateway="manual")
    post_action(_client(viewer), "wallets.Payment", "approve_selected", [payment.pk])
    assert Payment.objects.get(gateway="manual").status == Payment.Status.PENDING
    post_action(granted(viewer, "wallets.review_payment"), "wallets.Payment", "approve_selected", [payment.pk])
    assert Payment.objects.get(gateway="manual").status == Payment.Status.PAID


# --- Records are kept ----------------------------------------------------------------------------
@pytest.mark.parametrize("model", [ProviderCall, PriceChange, Entry, OrderEvent])
def test_records_cannot_be_deleted_even_by_a_superuser(world, staff, model):
    request = _request_as(staff)
    pk = pks(model)[0]
    if model in admin.site._registry:
        model_admin = admin.site._registry[model]
        assert not model_admin.has_delete_permission(request)
        assert "delete_selected" not in model_admin.get_actions(request)
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_delete", args=[pk])
        assert _client(staff).post(url, {"post": "yes"}).status_code == 403
    for owner_admin in admin.site._registry.values():
        for inline in owner_admin.get_inline_instances(request):
            if inline.model is model:
                assert not inline.can_delete or not inline.has_delete_permission(request)
    assert model._base_manager.filter(pk=pk).exists()
