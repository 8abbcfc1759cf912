"""`make bench`'s `webhooks` phase: customers' webhooks under faults, and what they cost the
order pipeline.

1. Orders to change: half `webhook_events` orders placed through order_place by 100
   customers and sent by the order workers (as the `drain` phase does; not measured).
2. Every one of those customers gets an endpoint (`endpoint_save`, each its own secret) on the
   receiver simulator, run as its own process (simulators/webhook_receiver), failing 30 % of
   requests with 500 and holding 2 % for longer than the read timeout.
3. `webhook_events` status changes through the real path: the provider simulator moves those
   orders two steps (Pending → In progress → a final status), and `order_sync_chunk` (the
   status sync's own code) applies them: each change writes its outbox row in the order's
   transaction and enqueues its delivery on commit, to the webhooks queue.
4. Drain without webhooks: `drain_orders` orders placed by the same customers, sent by the
   order workers alone; the events wait in their queue.
5. Drain with webhooks: as many orders again; the order workers and the webhooks worker start
   together, so the events are delivered while the orders drain. Both drains are timed the
   same way, from the workers' start to the last order sent, on the same database (only the
   first drain's orders apart), so the ratio is the webhooks' cost and not the drift of a
   database that grew and churned between them. The attempts made during the drain are
   counted (deliveries give way to a submission backlog: webhooks/pace.py).
6. The webhooks worker keeps going (retries, the beat's sweep sent every 60 s, as the beat does)
   until every event is delivered; then the receiver's record is checked: every event arrived
   at least once, every accepted delivery had a valid signature, and each order's events first
   arrived in the order they were written.

Deliveries go to their own queue (WEBHOOKS_QUEUE=webhooks) and worker, `nice`d as the deploy
unit is, unless `--webhooks-shared` puts them on the order workers' queue (to compare; then
the status changes come after the drain without webhooks, on its orders, as they would be
delivered during it otherwise).

Time: production retries after 30 s × 2^(n-1), capped at an hour, for 25 hours. The bench
divides the base and the cap by BENCH_WEBHOOKS_TIME_SCALE (1000 unless told: 30 ms, 3.6 s);
the 25-hour horizon is left as it is, so no event can run out of time during a run. The bench
also shortens the timeouts (1 s connect, 2 s read; the receiver hangs 3 s).
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests

from devtools.ports import free_port
from devtools.procs import celery_worker_argv, wait_for

if TYPE_CHECKING:
    from tests.bench.run_all import Run

WORKER = "hooks"
QUEUE = "webhooks"
FAIL_RATE = 0.3
HANG_RATE = 0.02
HANG_SECONDS = 3.0
READ_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
SWEEP_EVERY = 60.0  # the beat's schedule: oftener, each sweep re-sends what is already queued
# The drain with webhooks on within 10 % of the drain without.
RATIO_TARGET = 90


def time_scale() -> float:
    scale = float(os.environ.get("BENCH_WEBHOOKS_TIME_SCALE", "1000"))
    if scale < 1:
        raise ValueError("BENCH_WEBHOOKS_TIME_SCALE must be at least 1")
    return scale


def worker_nice() -> int:
    """The webhooks worker's niceness: 10 as deployed; BENCH_WEBHOOKS_NICE=0 to compare."""
    return int(os.environ.get("BENCH_WEBHOOKS_NICE", "10"))


def bench_env() -> dict[str, str]:
    """The webhook settings of every process of a bench run (bench only: see the docstring)."""
    scale = time_scale()
    return {
        "WEBHOOKS_ALLOW_PRIVATE_URLS": "true",  # the receiver listens on 127.0.0.1
        "WEBHOOKS_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "WEBHOOKS_READ_TIMEOUT": str(READ_TIMEOUT),
        "WEBHOOKS_RETRY_BASE_SECONDS": str(30 / scale),
        "WEBHOOKS_RETRY_MAX_SECONDS": str(3600 / scale),
        "WEBHOOKS_QUEUE": QUEUE,
    }


class Receiver:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def control(self, **command: Any) -> Any:
        reply = requests.post(f"{self.base}/control", json=command, timeout=120)
        reply.raise_for_status()
        return reply.json()

    def url(self, user_id: int) -> str:
        return f"{self.base}/hook/{user_id}"


def _log(text: str) -> None:
    from tests.bench.run_all import loadavg, log

    log(f"webhooks: {text} (load {loadavg()})")


def _drain(
    run: Run,
    *,
    users: list[int],
    services: list[int],
    tag: str,
    hooks_queue: str,
    hooks_worker: bool,
    count: int | None = None,
) -> dict[str, Any]:
    """Place `count` (drain_orders) orders with no worker running, then start the order
    workers (and the webhooks worker, if told) and time them until all are sent."""
    from django.db.models import Count, Max, Min
    from django.utils import timezone

    from orders.models import Order, State
    from tests.bench import run_all as bench
    from tests.bench import seed
    from webhooks.models import Delivery

    plan = run.plan
    seed.settle()  # both drains start from a vacuumed, checkpointed database
    began = time.monotonic()
    count = count or plan.drain_orders
    ids = bench._place_in_processes(run, count=count, users=users, services=services, tag=tag)
    placing = time.monotonic() - began
    if len(ids) != count:
        raise RuntimeError(f"placed {len(ids)} orders, not {count}")
    run.sim.command("reset_counters")
    mine = Order.objects.filter(pk__gte=ids[0])  # nothing else creates orders meanwhile
    unsettled = mine.filter(state__in=(State.QUEUED, State.SENDING))
    _log(f"drain {tag}: {len(ids)} placed in {placing:.1f} s; starting the workers")
    with bench.metered(run, f"webhooks_drain_{tag}") as box:
        launched = timezone.now()
        bench._start_workers(run, queues="celery" if hooks_queue else "")
        if hooks_worker:
            _start_hooks_worker(run, hooks_queue)
        wait_for(lambda: not unsettled.exists(), timeout=max(300, plan.drain_orders / 20), interval=0.5, what="drain")
        box["operations"] = len(ids)
    span = mine.aggregate(first=Min("sending_started_at"), last=Max("sent_at"))
    # Deliveries the webhooks worker made while orders were being sent (it gives way to a
    # submission backlog: webhooks/pace.py).
    during = Delivery.objects.filter(created_at__gte=launched, created_at__lte=span["last"]).count()
    from_start = (span["last"] - launched).total_seconds()
    from_claim = (span["last"] - span["first"]).total_seconds()
    return {
        "orders": len(ids),
        "first_order": ids[0],
        "launched": launched,
        "placing_seconds": round(placing, 1),
        "from_worker_start_seconds": round(from_start, 2),
        "first_claim_to_last_sent_seconds": round(from_claim, 2),
        "orders_per_s": round(len(ids) / from_start, 1),
        "orders_per_s_from_first_claim": round(len(ids) / from_claim, 1),
        "states": dict(mine.values_list("state").annotate(n=Count("id")).order_by()),
        "simulator_adds": run.sim.summary()["adds_total"],
        "webhook_attempts_during": during,
        "load": os.getloadavg()[0],
    }


def _start_hooks_worker(run: Run, queue: str) -> None:
    # Below the order workers in the CPU scheduler's eyes, as deploy/systemd's unit (Nice=10).
    argv = celery_worker_argv(threads=run.plan.webhook_threads, hostname="benchhooks@%h", extra=("--queues", queue))
    run.procs.start(WORKER, ["nice", "-n", str(worker_nice()), *argv], env=dict(os.environ))


def _events(
    run: Run, receiver: Receiver, details: dict[str, Any], *, users: list[int], first_order: int
) -> tuple[int, int]:
    """Give every customer an endpoint at the receiver (faults on), then make the status
    changes on the orders from `first_order` on. Returns (first event's pk, events written)."""
    from django.db.models import Max

    from accounts.models import User
    from webhooks import services as webhooks
    from webhooks.models import Event

    secrets = {}
    for user in User.objects.filter(pk__in=users):
        secret = webhooks.endpoint_save(user=user, url=receiver.url(user.pk))
        assert secret is not None
        secrets[f"/hook/{user.pk}"] = secret
    receiver.control(action="secrets", secrets=secrets)
    receiver.control(action="faults", fail_rate=FAIL_RATE, hang_rate=HANG_RATE, hang_seconds=HANG_SECONDS)
    first_event = (Event.objects.aggregate(last=Max("pk"))["last"] or 0) + 1
    began = time.monotonic()
    changed_orders = list(range(first_order, first_order + run.plan.webhook_events // 2))
    changes = _status_changes(run, order_ids=changed_orders)
    events = Event.objects.filter(pk__gte=first_event).count()
    details["status_changes"] = {"changes": changes, "events": events, "seconds": round(time.monotonic() - began, 1)}
    _log(f"{changes} status changes wrote {events} events in {time.monotonic() - began:.1f} s")
    return first_event, events


def _status_changes(run: Run, *, order_ids: list[int]) -> int:
    """Move these orders two steps at the provider and apply each step with the status sync's
    own chunk function, 100 orders a call, from 4 threads. Returns the status changes made."""
    from django.db.models import F

    from orders.models import Order, OrderEvent
    from orders.services import sync
    from tests.bench import run_all as bench

    rows = list(Order.objects.filter(pk__in=order_ids).values_list("provider_id", "provider_order_id", "pk"))
    upstream = [int(ref) for _, ref, _ in rows]
    chunks: list[tuple[int, list[int]]] = []
    by_provider: dict[int, list[int]] = defaultdict(list)
    for provider, _, pk in rows:
        by_provider[provider].append(pk)
    for provider, pks in by_provider.items():
        chunks += [(provider, pks[i : i + 100]) for i in range(0, len(pks), 100)]
    before = OrderEvent.objects.filter(order_id__in=order_ids).exclude(from_status=F("to_status")).count()
    for step in (1, 2):
        run.sim.command("advance", steps=1, orders=upstream)
        todo = list(chunks)

        def work(_n: int, todo: list[tuple[int, list[int]]] = todo) -> None:
            while todo:
                try:
                    provider, pks = todo.pop()
                except IndexError:
                    return
                sync.order_sync_chunk(provider_id=provider, order_ids=pks)

        errors = bench._threads(4, work)
        if errors:
            raise errors[0]
        _log(f"status step {step} applied to {len(rows)} orders")
    after = OrderEvent.objects.filter(order_id__in=order_ids).exclude(from_status=F("to_status")).count()
    return after - before


def _wait_delivered(first_event: int, *, timeout: float) -> float:
    """Until no event from `first_event` on is pending, sending the beat's sweep every few
    seconds as the beat would. Returns the seconds waited."""
    from webhooks.models import Event, EventState
    from webhooks.tasks import webhooks_sweep_task

    pending = Event.objects.filter(pk__gte=first_event, state=EventState.PENDING)
    began = time.monotonic()
    swept = began
    while pending.exists():
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{pending.count()} events still pending after {timeout:.0f} s")
        if time.monotonic() - swept > SWEEP_EVERY:
            webhooks_sweep_task.delay()
            swept = time.monotonic()
        time.sleep(0.5)
    return time.monotonic() - began


def _check(receiver: Receiver, *, first_event: int) -> dict[str, Any]:
    """The receiver's record against the outbox."""
    from webhooks.models import Event

    events = list(Event.objects.filter(pk__gte=first_event).order_by("pk").values_list("event_id", "order_ref"))
    expected: dict[int, list[str]] = defaultdict(list)
    order_of = {}
    for event_id, order_ref in events:
        expected[order_ref].append(event_id)
        order_of[event_id] = order_ref
    deliveries = receiver.control(action="state", bodies=False)["deliveries"]
    accepted = [d for d in deliveries if 200 <= d["status"] < 300]
    arrived: dict[int, list[str]] = defaultdict(list)
    for d in accepted:
        if d["id"] in order_of:
            arrived[order_of[d["id"]]].append(d["id"])
    out_of_order = sum(1 for order, ids in expected.items() if list(dict.fromkeys(arrived[order])) != ids)
    accepted_ids = [d["id"] for d in accepted]
    return {
        "events": len(events),
        "orders": len(expected),
        "requests": len(deliveries),
        "answered_500": sum(1 for d in deliveries if d["status"] == 500),
        "hung": sum(1 for d in deliveries if d["hung"]),
        "accepted": len(accepted),
        "duplicates": len(accepted_ids) - len(set(accepted_ids)),
        "missing": len(set(order_of) - set(accepted_ids)),
        "unknown_ids": len(set(accepted_ids) - set(order_of)),
        "invalid_signatures": sum(1 for d in deliveries if d["valid"] is not True),
        "accepted_invalid": sum(1 for d in accepted if d["valid"] is not True),
        "orders_out_of_order": out_of_order,
    }


def phase(run: Run) -> None:
    from django.db.models import Max

    from tests.bench import run_all as bench
    from tests.bench import seed
    from webhooks.models import Delivery, Event, EventState

    plan = run.plan
    hooks_queue = os.environ.get("WEBHOOKS_QUEUE", "")
    orders_changed = plan.webhook_events // 2
    if orders_changed > plan.drain_orders:
        raise RuntimeError("webhook_events needs at most two status changes per drained order")
    run.procs.stop(WORKER, *bench.worker_names(plan))
    bench._flush_broker()
    run.sim.command("set_latency", ms=plan.drain_latency_ms)
    services = seed.orderable_services(quantity=100)
    first = 100 if plan.customers >= 200 else 0  # not the drain phase's customers
    users = [run.customers.user_id(i) for i in range(first, first + min(100, plan.customers))]
    port = free_port()
    receiver = Receiver(port)
    # The receiver stands for the customers' servers: on this machine, it yields to the panel.
    run.procs.start(
        "receiver",
        ["nice", "-n", "10", sys.executable, "-m", "simulators.webhook_receiver", "--port", str(port)],
        env=dict(os.environ),
    )
    wait_for(lambda: bool(receiver.control(action="state", bodies=False)), timeout=30, what="the webhook receiver")
    details: dict[str, Any] = {
        "queue": hooks_queue or "shared with the order workers",
        "worker_nice": worker_nice() if hooks_queue else None,
        "faults": {"fail_rate": FAIL_RATE, "hang_rate": HANG_RATE, "hang_seconds": HANG_SECONDS},
        "read_timeout": READ_TIMEOUT,
        "time_scale": time_scale(),
    }
    run.details["webhooks"] = details
    try:
        if hooks_queue:
            # Both measured drains run after the status changes, on the same database: the
            # events wait in their queue through the first drain (no webhooks worker) and are
            # delivered during the second. The orders they are about come from a drain of
            # their own, not measured.
            _log("orders for the status changes")
            setup = _drain(
                run,
                users=users,
                services=services,
                tag="for-changes",
                hooks_queue=hooks_queue,
                hooks_worker=False,
                count=orders_changed,
            )
            run.procs.stop(WORKER, *bench.worker_names(plan))
            first_event, events = _events(run, receiver, details, users=users, first_order=setup["first_order"])
        _log("drain without webhooks")
        off = _drain(run, users=users, services=services, tag="hooks-off", hooks_queue=hooks_queue, hooks_worker=False)
        details["drain_off"] = {k: v for k, v in off.items() if k != "launched"}
        _log(f"drain without webhooks: {off['orders_per_s']} orders/s")
        run.procs.stop(WORKER, *bench.worker_names(plan))
        if not hooks_queue:
            # On the order workers' queue the events would be delivered during the first drain:
            # they are written after it.
            first_event, events = _events(run, receiver, details, users=users, first_order=off["first_order"])

        _log("drain with webhooks")
        on = _drain(
            run, users=users, services=services, tag="hooks-on", hooks_queue=hooks_queue, hooks_worker=bool(hooks_queue)
        )
        details["drain_on"] = {k: v for k, v in on.items() if k != "launched"}
        _log(
            f"drain with webhooks: {on['orders_per_s']} orders/s, {on['webhook_attempts_during']} delivery "
            "attempts meanwhile; waiting for every event"
        )
        with bench.metered(run, "webhooks_delivery") as box:
            _wait_delivered(first_event, timeout=max(600, events / 5))
            box["operations"] = events
        last = Event.objects.filter(pk__gte=first_event).aggregate(last=Max("finished_at"))["last"]
        launched: datetime = on["launched"]
        delivery_seconds = (last - launched).total_seconds()
        attempts = Delivery.objects.filter(event_id__gte=first_event).count()
        states = set(Event.objects.filter(pk__gte=first_event).values_list("state", flat=True))
        check = _check(receiver, first_event=first_event)
    finally:
        run.procs.stop(WORKER, "receiver", *bench.worker_names(plan))
    details["delivery"] = {
        "seconds_from_worker_start": round(delivery_seconds, 1),
        "attempts": attempts,
        "retries": attempts - events,
        "all_delivered": states == {EventState.DELIVERED},
        **check,
    }
    _log(f"{details['delivery']}")
    ratio = round(on["orders_per_s"] / off["orders_per_s"] * 100, 1)
    n = plan.drain_orders
    run.add(
        "webhooks_drain_off_orders_per_s",
        f"Drain of {n:,}, no webhook endpoints (from worker start)",
        off["orders_per_s"],
        "orders/s",
    )
    run.add(
        "webhooks_drain_on_orders_per_s",
        f"Drain of {n:,}, {events:,} webhook events delivered meanwhile",
        on["orders_per_s"],
        "orders/s",
    )
    run.add("webhooks_drain_ratio", "Drain with webhooks on, share of without", ratio, "%")
    run.add(
        "webhooks_attempts_during_drain",
        "Webhooks: delivery attempts while that drain ran (they give way to it)",
        on["webhook_attempts_during"],
    )
    run.add("webhooks_events", "Webhook events from status changes", events, expected=float(plan.webhook_events))
    run.add(
        "webhooks_all_arrived",
        "Webhooks: every event arrived at least once",
        int(check["missing"] == 0 and states == {EventState.DELIVERED}),
        "yes/no",
    )
    run.add(
        "webhooks_signatures_valid",
        "Webhooks: every accepted delivery validly signed",
        int(check["accepted_invalid"] == 0 and check["invalid_signatures"] == 0),
        "yes/no",
    )
    run.add(
        "webhooks_in_order",
        "Webhooks: each order's events first arrived in order",
        int(check["orders_out_of_order"] == 0),
        "yes/no",
    )
    run.add(
        "webhooks_delivery_seconds", "Webhooks: worker start to last event delivered", round(delivery_seconds, 1), "s"
    )
    run.add("webhooks_attempts", "Webhooks: delivery attempts", attempts)
    run.add("webhooks_retries", "Webhooks: retries (attempts beyond one per event)", attempts - events)
    run.add(
        "webhooks_duplicates", "Webhooks: events accepted more than once (a hang past the timeout)", check["duplicates"]
    )
