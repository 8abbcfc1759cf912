"""Demotion by failure rate and by deliveries (stalled, canceled, partial orders), recovery
when the provider delivers again, and placing priced on the route the policy chooses;
against the provider simulator."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Route, RouteQuality, RoutingPolicy
from catalog.routing import route_health_failure, route_health_success
from catalog.services import panel_settings_get
from orders.models import Order, RoutingDecision, State, Status
from orders.services import order_submit, order_sync_chunk, order_transition
from tests.orders.factories import fund
from tests.orders.test_routing import _settings, _submit_until_settled
from wallets.audit import ledger_audit

pytestmark = pytest.mark.django_db

SENDING = RoutingDecision.Stage.SENDING
PLACING = RoutingDecision.Stage.PLACING


def _two_routes(shop: Any, make_simulator: Any, **options: Any) -> tuple[Any, Any, Any, Route, Route]:
    first, second = make_simulator(), make_simulator()
    service = shop.service(sims=[first, second], **options)
    primary, fallback = list(service.routes.order_by("priority"))
    return service, first, second, primary, fallback


def _place_and_send(place: Any, customer: Any, service: Any, link: str) -> Order:
    order = place(customer, service, link=link, quantity="100")
    _submit_until_settled([order.pk])
    order.refresh_from_db()
    return order


def _sync(orders: list[Order]) -> dict[str, int]:
    """One status sync of these orders, as the beat task runs it (they share a provider)."""
    return order_sync_chunk(provider_id=orders[0].provider_id, order_ids=[o.pk for o in orders])


def _age(orders: list[Order], minutes: int) -> None:
    """The provider accepted these orders `minutes` ago."""
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(sent_at=timezone.now() - timedelta(minutes=minutes))


# --- Failure rate -------------------------------------------------------------------------------
def test_a_provider_failing_most_sends_between_successes_is_demoted(customer, shop, place, make_simulator):
    """Failures and successes alternate (60% fail): no streak ever reaches the threshold, the
    share over the window does."""
    _settings(failures=5, percent=50)
    service, first, second, primary, fallback = _two_routes(shop, make_simulator)
    fund(customer, "100")
    orders = []
    for i in range(5):  # fail, ok, fail, ok, fail
        if i % 2 == 0:
            first.set_fault("error", action="add", text="Service temporarily disabled", count=1)
        orders.append(_place_and_send(place, customer, service, f"https://instagram.com/p/rate{i}"))
        primary.refresh_from_db()
        assert (primary.demoted_at is None) == (i < 4), i
    assert (primary.send_attempts, primary.send_failures) == (5, 3)
    assert primary.demoted_for == "sending" and "3 of 5 sends not accepted" in primary.demoted_reason
    # Each order was bought exactly once: the refused ones at the next route.
    for i, order in enumerate(orders):
        expected = fallback if i % 2 == 0 else primary
        assert (order.state, order.route_id) == (State.SENT, expected.pk)
    assert first.adds_total() == 2 and second.adds_total() == 3
    # Once demoted, the next orders go straight to the next route, once each.
    later = [_place_and_send(place, customer, service, f"https://instagram.com/p/later{i}") for i in range(3)]
    assert {o.route_id for o in later} == {fallback.pk}
    assert first.adds_total() == 2 and second.adds_total() == 6
    for order in later:
        assert second.add_count(int(fallback.upstream.external_id), order.link, 100) == 1
    assert ledger_audit() == []


def test_a_failure_share_below_the_threshold_does_not_demote(customer, shop, place, make_simulator):
    _settings(failures=5, percent=50)
    service, first, _second, primary, _fallback = _two_routes(shop, make_simulator)
    fund(customer, "100")
    for i in range(9):  # fail, ok, ok, fail, ok, ok, fail, ok, ok: a third fail
        if i % 3 == 0:
            first.set_fault("error", action="add", text="Service temporarily disabled", count=1)
        _place_and_send(place, customer, service, f"https://instagram.com/p/third{i}")
    primary.refresh_from_db()
    assert primary.demoted_at is None and (primary.send_attempts, primary.send_failures) == (9, 3)


# --- Stops delivering -----------------------------------------------------------------------------
def test_a_provider_that_accepts_but_never_starts_is_demoted_and_recovers_when_it_delivers(
    customer, shop, place, make_simulator
):
    # The first simulator accepts every order and never moves it (no progression): pending.
    _settings(failures=3, undelivered=50, stall=30, probe=5)
    service, first, second, primary, fallback = _two_routes(shop, make_simulator)
    fund(customer, "100")
    stuck = [_place_and_send(place, customer, service, f"https://instagram.com/p/stuck{i}") for i in range(3)]
    assert {o.route_id for o in stuck} == {primary.pk}

    # Pending for less than the stall time: nothing counted.
    _age(stuck, 29)
    assert "stalled" not in _sync(stuck)
    primary.refresh_from_db()
    assert primary.demoted_at is None and primary.delivery_outcomes == 0

    # Still pending 30 minutes after it accepted them: three undelivered of three.
    _age(stuck, 31)
    assert _sync(stuck)["stalled"] == 3
    primary.refresh_from_db()
    assert primary.demoted_for == "delivery" and "3 of 3 orders not delivered" in primary.demoted_reason
    assert all(o.stalled_at is not None for o in Order.objects.filter(pk__in=[o.pk for o in stuck]))
    # Counted once: the next sync finds them still pending and counts nothing more.
    _sync(stuck)
    primary.refresh_from_db()
    assert (primary.delivery_outcomes, primary.delivery_failures) == (3, 3)

    # The next orders go to the next route, exactly once each.
    nexts = [_place_and_send(place, customer, service, f"https://instagram.com/p/next{i}") for i in range(4)]
    for order in nexts:
        assert (order.state, order.route_id) == (State.SENT, fallback.pk)
        assert second.add_count(int(fallback.upstream.external_id), order.link, 100) == 1
        assert first.add_count(int(primary.upstream.external_id), order.link, 100) == 0
        assert RoutingDecision.objects.filter(order=order, stage=SENDING).get().route_id == fallback.pk
    assert first.adds_total() == 3

    # A probe the provider accepts is not enough: it must deliver.
    Route.objects.filter(pk=primary.pk).update(probe_after=timezone.now() - timedelta(seconds=1))
    probe = _place_and_send(place, customer, service, "https://instagram.com/p/probe")
    assert probe.route_id == primary.pk
    primary.refresh_from_db()
    assert primary.demoted_for == "delivery"

    # The provider delivers again: one of its orders starts, and the route is back.
    first.force_status(int(stuck[0].provider_order_id), "In progress", remains=60, start_count=10)
    _sync(stuck)
    primary.refresh_from_db()
    assert primary.demoted_at is None and primary.delivery_outcomes == 0
    back = _place_and_send(place, customer, service, "https://instagram.com/p/back")
    assert back.route_id == primary.pk
    assert ledger_audit() == []


def test_a_high_share_of_canceled_and_partial_orders_demotes(customer, shop, place, make_simulator):
    _settings(failures=3, undelivered=60, stall=0)
    service, first, second, primary, fallback = _two_routes(shop, make_simulator)
    fund(customer, "100")
    orders = [_place_and_send(place, customer, service, f"https://instagram.com/p/share{i}") for i in range(4)]
    first.force_status(int(orders[0].provider_order_id), "Canceled")
    first.force_status(int(orders[1].provider_order_id), "Completed", remains=0)
    _sync(orders)
    primary.refresh_from_db()
    # A window opened at the cancel; the completion counts in it: 1 of 2, too few to judge.
    assert primary.demoted_at is None and (primary.delivery_outcomes, primary.delivery_failures) == (2, 1)

    first.force_status(int(orders[2].provider_order_id), "Partial", remains=40)
    _sync(orders)
    primary.refresh_from_db()
    assert primary.demoted_for == "delivery" and "2 of 3 orders not delivered" in primary.demoted_reason
    assert Order.objects.get(pk=orders[2].pk).status == Status.PARTIAL
    nxt = _place_and_send(place, customer, service, "https://instagram.com/p/after-share")
    assert nxt.route_id == fallback.pk and second.add_count(int(fallback.upstream.external_id), nxt.link, 100) == 1

    # An order of the service waiting for the route (its probe, or a retry's backoff).
    held = place(customer, service, link="https://instagram.com/p/held-share", quantity="100")
    Order.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    # A completed order of the route (it delivers) brings it back, and what waited is due.
    first.force_status(int(orders[3].provider_order_id), "Completed", remains=0)
    _sync(orders)
    primary.refresh_from_db()
    assert primary.demoted_at is None
    held.refresh_from_db()
    assert held.state == "queued" and held.next_attempt_at <= timezone.now()


def test_a_cancel_by_a_person_does_not_count_against_the_route(customer, staff, shop, place, make_simulator):
    _settings(failures=1, undelivered=50, stall=0)
    service, _first, _second, primary, _fallback = _two_routes(shop, make_simulator)
    fund(customer, "100")
    order = _place_and_send(place, customer, service, "https://instagram.com/p/mine")
    order_transition(order=order, status=Status.CANCELED, reason="staff canceled it", actor=staff)
    primary.refresh_from_db()
    assert primary.demoted_at is None and primary.delivery_failures == 0


# --- Placing ------------------------------------------------------------------------------------
def test_placing_records_the_policys_route_and_cost(customer, shop, place, make_simulator):
    sims = [shop.simulator, make_simulator(), make_simulator()]
    service = shop.service(sims=sims[:1], rate="1.20", price="1.300000")
    first = service.routes.get()
    cheap = shop.route(service, sim=sims[1], priority=2, rate="0.50")
    shop.route(service, sim=sims[2], priority=3, rate="9.00")  # above the price: never chosen
    fund(customer, "100")

    by_priority = place(customer, service, link="https://instagram.com/p/prio", quantity="1000")
    assert (by_priority.route_id, by_priority.provider_rate, by_priority.cost) == (
        first.pk,
        Decimal("1.20"),
        Decimal("1.20"),
    )
    decision = RoutingDecision.objects.get(order=by_priority, stage=PLACING)
    assert decision.route_id == first.pk and decision.reason.startswith("priority 1")

    service.routing_policy = RoutingPolicy.CHEAPEST
    service.save()
    cheapest = place(customer, service, link="https://instagram.com/p/cheap", quantity="1000")
    assert cheapest.route_id == cheap.pk and cheapest.provider_id == cheap.upstream.provider_id
    assert (cheapest.provider_rate, cheapest.cost) == (Decimal("0.50"), Decimal("0.50"))
    decision = RoutingDecision.objects.get(order=cheapest, stage=PLACING)
    assert decision.route_id == cheap.pk and decision.reason.startswith("cheapest")
    assert any("below cost" in c.get("skipped", "") for c in decision.candidates)
    # Submission sends it where placing priced it.
    assert order_submit(order_id=cheapest.pk) == "sent"
    cheapest.refresh_from_db()
    assert (cheapest.route_id, cheapest.cost) == (cheap.pk, Decimal("0.50"))
    assert sims[1].add_count(int(cheap.upstream.external_id), cheapest.link, 1000) == 1

    # A demoted route is passed over at placing, and placing claims no probe.
    due = timezone.now() - timedelta(seconds=1)
    Route.objects.filter(pk=cheap.pk).update(demoted_at=timezone.now(), demoted_for="sending", probe_after=due)
    passed = place(customer, service, link="https://instagram.com/p/demoted", quantity="1000")
    assert passed.route_id == first.pk and passed.cost == Decimal("1.20")
    assert Route.objects.get(pk=cheap.pk).probe_after == due


def test_placing_best_measured_reads_the_figures_in_one_query_whatever_the_routes(
    customer, shop, place, make_simulator
):
    sims = [shop.simulator, *(make_simulator() for _ in range(3))]
    service = shop.service(sims=sims[:1], rate="1.00", routing_policy=RoutingPolicy.BEST)
    routes = [service.routes.get()]
    fund(customer, "100")

    def measured(route: Route, start: int) -> None:
        RouteQuality.objects.create(
            route=route,
            finished=20,
            completed=20,
            started=20,
            delivered=20,
            start_p50=start,
            per1000_p50=60,
            computed_at=timezone.now(),
        )

    measured(routes[0], 7200)
    routes.append(shop.route(service, sim=sims[1], priority=2, rate="1.00"))
    measured(routes[1], 60)

    def placed(link: str) -> tuple[Order, int]:
        with CaptureQueriesContext(connection) as queries:
            order = place(customer, service, link=link, quantity="1000")
        return order, len(queries)

    placed("https://instagram.com/p/warm-up")
    two, with_two = placed("https://instagram.com/p/best2")
    assert two.route_id == routes[1].pk
    assert RoutingDecision.objects.get(order=two, stage=PLACING).reason.startswith("best measured delivery")
    for sim in sims[2:]:
        routes.append(shop.route(service, sim=sim, priority=len(routes) + 1, rate="1.00"))
    four, with_four = placed("https://instagram.com/p/best4")
    assert four.route_id == routes[1].pk
    assert with_four == with_two


def test_staff_edit_the_thresholds_in_panel_settings_with_their_help(client, staff, shop):
    row = panel_settings_get()
    client.force_login(staff)
    url = f"/admin/catalog/panelsettings/{row.pk}/change/"
    page = client.get(url).content.decode()
    for name in ("route_min_attempts", "route_failure_percent", "route_undelivered_percent", "route_stall_minutes"):
        assert f'name="{name}"' in page
    assert "still reports as pending this long after accepting it" in page
    data = {
        "default_markup_percent": str(row.default_markup_percent),
        "price_jump_threshold_percent": str(row.price_jump_threshold_percent),
        "route_failure_window_minutes": "15",
        "route_min_attempts": "4",
        "route_failure_percent": "101",
        "route_undelivered_percent": "40",
        "route_stall_minutes": "90",
        "route_probe_minutes": "5",
    }
    assert client.post(url, data).status_code == 200  # a share above 100 is refused
    assert panel_settings_get().route_failure_percent == 50
    data["route_failure_percent"] = "75"
    assert client.post(url, data).status_code == 302
    row = panel_settings_get()
    assert (row.route_min_attempts, row.route_failure_percent, row.route_undelivered_percent) == (4, 75, 40)
    assert (row.route_stall_minutes, row.route_failure_window_minutes) == (90, 15)
    # They are what demotion reads: three of four sends failing is 75 percent.
    route = shop.service().routes.get()
    now = timezone.now()
    assert not route_health_success(route_id=route.pk, now=now)  # no window open: nothing to count
    outcomes = [route_health_failure(route=route, why="x", now=now)]
    route_health_success(route_id=route.pk, now=now)
    outcomes += [route_health_failure(route=route, why="x", now=now) for _ in range(2)]
    assert outcomes == [False, False, True]
