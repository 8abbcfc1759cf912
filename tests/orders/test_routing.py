"""Routing by policy and by measurement, demotion of failing routes and their recovery,
against the provider simulator's fault modes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from catalog.models import Route, RouteQuality, RoutingPolicy
from catalog.routing import route_choose, route_health_failure
from catalog.services import panel_settings_get
from orders.models import Order, RoutingDecision, State, Status
from orders.services import order_submit
from tests.orders.factories import fund
from wallets.audit import ledger_audit
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db


def _settings(
    *,
    failures: int = 3,
    window: int = 10,
    probe: int = 5,
    percent: int = 50,
    undelivered: int = 50,
    stall: int = 30,
) -> None:
    row = panel_settings_get()
    row.route_min_attempts = failures
    row.route_failure_window_minutes = window
    row.route_probe_minutes = probe
    row.route_failure_percent = percent
    row.route_undelivered_percent = undelivered
    row.route_stall_minutes = stall
    row.save()


SENDING = RoutingDecision.Stage.SENDING


def _submit_until_settled(order_ids: list[int], rounds: int = 10) -> None:
    """Run submission for every queued order, as the sweeper would, ignoring backoff."""
    for _ in range(rounds):
        queued = list(Order.objects.filter(pk__in=order_ids, state=State.QUEUED).values_list("pk", flat=True))
        if not queued:
            return
        for pk in queued:
            order_submit(order_id=pk)


def _links(n: int) -> list[str]:
    return [f"https://instagram.com/p/route{i}" for i in range(n)]


@pytest.mark.parametrize("fault", ["refuse", "http429", "error"])
def test_failing_route_is_demoted_and_each_order_goes_to_the_next_route_once(
    fault, customer, shop, place, make_simulator
):
    _settings(failures=3)
    first, second = make_simulator(), make_simulator()
    service = shop.service(sims=[first, second])
    primary, fallback = list(service.routes.order_by("priority"))
    fund(customer, "100")
    if fault == "refuse":
        first.refuse()
    elif fault == "error":
        first.set_fault("error", action="add", text="Service temporarily disabled")
    else:
        first.set_fault("http429", action="add")
    orders = [place(customer, service, link=link, quantity="100") for link in _links(8)]
    _submit_until_settled([o.pk for o in orders])

    primary.refresh_from_db()
    assert primary.demoted_at is not None and primary.demoted_for == "sending"
    assert "3 of 3 sends not accepted or answered" in primary.demoted_reason
    for order in orders:
        order.refresh_from_db()
        assert (order.state, order.route_id) == (State.SENT, fallback.pk)
        # Exactly once each: never bought at the failing provider, once at the next one.
        assert first.add_count(int(primary.upstream.external_id), order.link, 100) == 0
        assert second.add_count(int(fallback.upstream.external_id), order.link, 100) == 1
    assert second.adds_total() == len(orders)
    # Once demoted, later orders went straight to the fallback: at most the threshold's
    # worth of attempts reached the failing route.
    assert RoutingDecision.objects.filter(route=primary, stage=SENDING).count() == 3
    assert ledger_audit() == []


def test_failures_spread_beyond_the_window_do_not_demote(shop):
    _settings(failures=3, window=10)
    route = shop.service().routes.get()
    start = timezone.now()
    for minutes in (0, 11, 22, 33):
        assert not route_health_failure(route=route, why="not sent", now=start + timedelta(minutes=minutes))
    route.refresh_from_db()
    assert route.demoted_at is None and (route.send_failures, route.send_attempts) == (1, 1)
    # Three within the window do.
    later = start + timedelta(minutes=40)
    assert [route_health_failure(route=route, why="x", now=later + timedelta(minutes=m)) for m in (1, 2)] == [
        False,
        True,
    ]


def test_demoted_route_is_probed_and_recovers_when_it_works_again(customer, shop, place, make_simulator):
    _settings(failures=2, probe=5)
    first, second = make_simulator(), make_simulator()
    service = shop.service(sims=[first, second])
    primary, fallback = list(service.routes.order_by("priority"))
    fund(customer, "100")
    first.set_fault("http429", action="add")
    orders = [place(customer, service, link=link, quantity="100") for link in _links(3)]
    _submit_until_settled([o.pk for o in orders])
    primary.refresh_from_db()
    assert primary.demoted_at is not None

    # Before the probe time every order goes to the fallback.
    waiting = place(customer, service, link="https://instagram.com/p/before-probe", quantity="100")
    assert order_submit(order_id=waiting.pk) == "sent"
    waiting.refresh_from_db()
    assert waiting.route_id == fallback.pk

    # An order of the service waiting (for the probe, or a retry's backoff).
    held = place(customer, service, link="https://instagram.com/p/held", quantity="100")
    Order.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    # The provider works again; once the probe time has come, one order probes it.
    first.clear_fault()
    Route.objects.filter(pk=primary.pk).update(probe_after=timezone.now() - timedelta(seconds=1))
    probe = place(customer, service, link="https://instagram.com/p/probe", quantity="100")
    assert order_submit(order_id=probe.pk) == "sent"
    probe.refresh_from_db()
    assert probe.route_id == primary.pk
    decision = RoutingDecision.objects.filter(order=probe, stage=SENDING).get()
    assert decision.reason.startswith("probe of demoted route")
    primary.refresh_from_db()
    assert primary.demoted_at is None and (primary.send_failures, primary.send_until) == (0, None)
    # An order that was waiting for the probe is due at once, not at its planned time.
    held.refresh_from_db()
    assert held.state == State.QUEUED and held.next_attempt_at <= timezone.now()
    after = place(customer, service, link="https://instagram.com/p/after", quantity="100")
    order_submit(order_id=after.pk)
    after.refresh_from_db()
    assert after.route_id == primary.pk


def test_a_failed_probe_keeps_the_route_demoted_and_the_order_moves_on(customer, shop, place, make_simulator):
    _settings(failures=1, probe=5)
    first, second = make_simulator(), make_simulator()
    service = shop.service(sims=[first, second])
    primary, fallback = list(service.routes.order_by("priority"))
    fund(customer, "100")
    first.set_fault("http429", action="add")
    order = place(customer, service, link="https://instagram.com/p/a", quantity="100")
    _submit_until_settled([order.pk])
    Route.objects.filter(pk=primary.pk).update(probe_after=timezone.now() - timedelta(seconds=1))
    probe = place(customer, service, link="https://instagram.com/p/b", quantity="100")
    _submit_until_settled([probe.pk])
    probe.refresh_from_db()
    primary.refresh_from_db()
    assert probe.route_id == fallback.pk and probe.state == State.SENT
    assert primary.demoted_at is not None and primary.probe_after > timezone.now() + timedelta(minutes=4)
    assert second.adds_total() == 2 and first.adds_total() == 0


def test_a_route_that_would_sell_below_cost_is_never_chosen(customer, shop, place, make_simulator):
    first, second = make_simulator(), make_simulator()
    service = shop.service(sims=[first], price="1.300000")
    expensive = shop.route(service, sim=second, priority=0, rate="5.00")  # first in priority, above price
    fund(customer, "100")
    order = place(customer, service, link="https://instagram.com/p/margin", quantity="1000")
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    assert order.route_id != expensive.pk and order.cost <= order.charge
    decision = RoutingDecision.objects.get(order=order, stage=SENDING)
    skipped = {c["route"]: c.get("skipped", "") for c in decision.candidates}
    assert "below cost" in skipped[expensive.pk]
    assert second.adds_total() == 0


def test_only_routes_below_cost_cancels_and_refunds(customer, shop, place):
    service = shop.service(rate="5.00", price="1.300000")
    fund(customer, "100")
    order = place(customer, service, link="https://instagram.com/p/loss", quantity="1000")
    assert order_submit(order_id=order.pk) == "rejected"
    order.refresh_from_db()
    assert (order.status, order.state) == (Status.CANCELED, State.REJECTED)
    assert wallet_balance(user=customer) == Decimal("100")
    assert shop.simulator.adds_total() == 0
    assert "below cost" in RoutingDecision.objects.get(order=order, stage=SENDING).reason


def _measured(route: Route, *, start: int, per1000: int, completed: int = 20) -> None:
    RouteQuality.objects.create(
        route=route,
        finished=completed,
        completed=completed,
        started=completed,
        delivered=completed,
        start_p50=start,
        start_p90=start * 2,
        per1000_p50=per1000,
        per1000_p90=per1000 * 2,
        computed_at=timezone.now(),
    )


def _choose(service: Any, charge: str = "10") -> Any:
    routes = list(
        Route.objects.filter(service=service).select_related("upstream__provider", "quality").order_by("priority")
    )
    return route_choose(
        service=service,
        routes=routes,
        charge=Decimal(charge),
        quantity=1000,
        cost_of=lambda r: r.upstream.rate,
    )


def test_policies_choose_priority_cheapest_or_best_measured_within_the_ceiling(shop, make_simulator):
    sims = [shop.simulator, make_simulator(), make_simulator()]
    service = shop.service(sims=sims[:1], rate="3.00")
    slow = service.routes.get()
    cheap = shop.route(service, sim=sims[1], priority=2, rate="1.00")
    fast = shop.route(service, sim=sims[2], priority=3, rate="2.00")
    _measured(slow, start=7200, per1000=7200)
    _measured(cheap, start=3600, per1000=3600)
    _measured(fast, start=60, per1000=600)

    assert _choose(service).route == slow and _choose(service).reason.startswith("priority 1")
    service.routing_policy = RoutingPolicy.CHEAPEST
    assert _choose(service).route == cheap
    service.routing_policy = RoutingPolicy.BEST
    choice = _choose(service)
    assert choice.route == fast and "expected 660 s" in choice.reason
    service.routing_max_cost = Decimal("1.50")  # the fast one is above the ceiling
    choice = _choose(service)
    assert choice.route == cheap
    assert any("price ceiling" in c.get("skipped", "") for c in choice.candidates)


def test_staff_see_the_routing_decision_and_the_customer_does_not(client, customer, staff, shop, place, make_simulator):
    first, second = make_simulator(), make_simulator()
    service = shop.service(sims=[first, second])
    fund(customer, "100")
    order = place(customer, service, link="https://instagram.com/p/seen", quantity="100")
    order_submit(order_id=order.pk)
    client.force_login(staff)
    page = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "routing decision" in page.lower() and "priority 1: route" in page
    assert "Placing" in page and "Sending" in page  # the decision at placing and at sending
    client.force_login(customer)
    page = client.get(f"/orders/{order.pk}/").content.decode()
    decision = RoutingDecision.objects.get(order=order, stage=SENDING)
    assert decision.reason not in page and "priority 1:" not in page


def test_a_probe_claimed_for_an_order_another_worker_took_is_given_back(
    customer, shop, place, make_simulator, monkeypatch
):
    """Two workers hold the same order's message: the one that claims the demoted route's
    probe but loses the order to the other sends nothing, and the probe is due again at once."""
    from orders.services import submission

    _settings(failures=1, probe=5)
    first, second = make_simulator(), make_simulator()
    service = shop.service(sims=[first, second])
    primary, _fallback = list(service.routes.order_by("priority"))
    fund(customer, "100")
    first.set_fault("http429", action="add")
    _submit_until_settled([place(customer, service, link="https://instagram.com/p/a", quantity="100").pk])
    first.clear_fault()
    due = timezone.now() - timedelta(seconds=1)
    Route.objects.filter(pk=primary.pk).update(probe_after=due)
    order = place(customer, service, link="https://instagram.com/p/raced", quantity="100")

    real = submission.order_transition

    def lost_the_claim(**kwargs: Any) -> bool:
        if kwargs.get("state") == State.SENDING:
            return False  # the other worker moved the order first
        return real(**kwargs)

    monkeypatch.setattr(submission, "order_transition", lost_the_claim)
    assert order_submit(order_id=order.pk) == "skipped"
    primary.refresh_from_db()
    assert primary.demoted_at is not None and primary.probe_after <= timezone.now()
    assert first.adds_total() == 0

    monkeypatch.setattr(submission, "order_transition", real)
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    primary.refresh_from_db()
    assert order.route_id == primary.pk and primary.demoted_at is None
