"""What the chaos run checks once the system has settled (run inside the orchestrator, Django set up).

Each check returns a Check: its name, whether it passed, and the lines that explain it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chaos.hosts import HostCut
from chaos.workload import Intent

SHOW = 12  # examples listed per failing check


@dataclass
class Check:
    name: str
    ok: bool
    lines: list[str] = field(default_factory=list)


def _examples(items: list[str]) -> list[str]:
    extra = [f"... and {len(items) - SHOW} more"] if len(items) > SHOW else []
    return items[:SHOW] + extra


def order_breakdown() -> tuple[int, Counter[str], Counter[str]]:
    from orders.models import Order

    rows = list(Order.objects.values_list("status", "state"))
    return len(rows), Counter(s for s, _ in rows), Counter(s for _, s in rows)


def check_nothing_stuck() -> Check:
    """Every order is final, sent or unknown; no refill or cancel request still on its way."""
    from orders.models import CancelRequest, Order, OrderEvent, Refill, RequestState, State

    lines: list[str] = []
    stuck = list(
        Order.objects.filter(state__in=(State.QUEUED, State.SENDING))
        .order_by("id")
        .values("id", "state", "attempts", "next_attempt_at", "sending_started_at")
    )
    for row in stuck:
        last = OrderEvent.objects.filter(order_id=row["id"]).order_by("-id").values_list("reason", flat=True).first()
        lines.append(
            f"order #{row['id']} still {row['state']} (attempts {row['attempts']}, next attempt "
            f"{row['next_attempt_at']:%H:%M:%S}, last event: {last})"
            if row["next_attempt_at"]
            else f"order #{row['id']} still {row['state']} (attempts {row['attempts']}, last event: {last})"
        )
    for model in (Refill, CancelRequest):
        for pk, state in (
            model.objects.filter(state__in=(RequestState.QUEUED, RequestState.SENDING))
            .order_by("id")
            .values_list("id", "state")
        ):
            lines.append(f"{model.__name__} #{pk} still {state}")
    ok = not lines
    return Check("every order is final, sent or unknown (none queued or sending)", ok, _examples(lines))


def _attempt_outcomes(order_ids: Iterable[int]) -> dict[int, str]:
    """How each order's last trip through `sending` ended, from its OrderEvent history.

    "none": it never entered sending. "never_sent": the last attempt came back to queued or
    ended rejected (the client proved nothing reached the provider, or the provider refused
    it). "sent" / "unknown": the provider accepted it, or may have. "sending": still there.
    """
    from orders.models import OrderEvent, State

    outcome: dict[int, str] = dict.fromkeys(order_ids, "none")
    events = OrderEvent.objects.exclude(from_state="", to_state="").order_by("order_id", "id")
    for order_id, from_state, to_state in events.values_list("order_id", "from_state", "to_state").iterator():
        if to_state == from_state:
            continue
        if to_state == State.SENDING:
            outcome[order_id] = "sending"
        elif from_state == State.SENDING:
            outcome[order_id] = "never_sent" if to_state in (State.QUEUED, State.REJECTED) else str(to_state)
        elif from_state == State.UNKNOWN and to_state == State.SENT:
            outcome[order_id] = "sent"  # a late answer of the same attempt
    return outcome


def check_adds(summary: dict[str, Any]) -> list[Check]:
    """The provider's add counter against the orders' histories: exactly once, or refunded."""
    from orders.models import Order, State

    if summary.get("add_counts_truncated"):
        return [Check("simulator add counts", False, ["the simulator's add counts were truncated"])]
    counts: dict[tuple[str, str, int], int] = {
        (str(c["service"]), str(c["link"]), int(c["quantity"])): int(c["count"]) for c in summary["add_counts"]
    }
    adds_total = int(summary["adds_total"])
    orders = list(Order.objects.values_list("id", "external_service_id", "link", "quantity", "state"))
    outcomes = _attempt_outcomes(o[0] for o in orders)
    by_key: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for pk, service, link, quantity, _ in orders:
        by_key[(str(service), link, int(quantity))].append(pk)

    sent = [o for o in orders if outcomes[o[0]] == "sent"]
    unknown = [o for o in orders if outcomes[o[0]] == "unknown"]
    problems: list[str] = []
    unknown_received = 0
    for pk, service, link, quantity, state in orders:
        got = counts.get((str(service), link, int(quantity)), 0)
        outcome = outcomes[pk]
        if outcome == "sent" and got != 1:
            problems.append(f"order #{pk} ({state}) was accepted upstream but the provider counted {got} adds")
        elif outcome in ("none", "never_sent") and got:
            problems.append(f"order #{pk} ({state}, last attempt {outcome}) was never sent, yet the provider has {got}")
        elif outcome == "unknown":
            if got > 1:
                problems.append(f"order #{pk} (unknown) was bought {got} times")
            unknown_received += min(got, 1)
        if outcome == "sent" and state != State.SENT:
            problems.append(f"order #{pk} was accepted upstream but is {state}")
    doubles = [
        f"{key[1]} x{key[2]} (service {key[0]}): {n} adds for {len(by_key.get(key, []))} order(s)"
        for key, n in counts.items()
        if n > len(by_key.get(key, []))
    ]
    orphans = sum(n for key, n in counts.items() if key not in by_key)
    reached = len(sent) + len(unknown)
    equal = adds_total == len(sent) + unknown_received and not orphans
    checks = [
        Check(
            "provider adds = orders that reached sending and were not proven never sent",
            equal and not problems,
            [
                f"simulator adds {adds_total}; orders that reached sending and were not proven never sent: "
                f"{reached} (sent {len(sent)}, unknown {len(unknown)} of which the provider received "
                f"{unknown_received} and never saw {len(unknown) - unknown_received})",
                *([f"{orphans} add(s) match no order"] if orphans else []),
                *_examples(problems),
            ],
        ),
        Check(
            "never more adds than orders for any (service, link, quantity)",
            not doubles,
            _examples(doubles) or [f"{len(counts)} keys, each bought at most once per order"],
        ),
    ]
    return checks


def check_ledger() -> Check:
    from wallets.audit import ledger_audit_run

    report = ledger_audit_run()
    return Check("ledger_audit passes", report.ok, [report.summary(), *_examples(report.lines())])


def check_clients(intents: list[Intent]) -> Check:
    """What customers were told matches the database, and no request placed two orders."""
    from orders.models import Order

    rows = list(Order.objects.values_list("id", "link", "user__username"))
    by_link: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pk, link, username in rows:
        by_link[link].append((pk, username))
    problems = [
        f"{len(v)} orders for one request ({link}): {[pk for pk, _ in v]}" for link, v in by_link.items() if len(v) > 1
    ]
    lost = 0
    for intent in intents:
        found = by_link.get(intent.link, [])
        if intent.order_id is not None:
            if [(intent.order_id, intent.username)] != found:
                problems.append(
                    f"{intent.channel} {intent.username} was told order #{intent.order_id}, database has {found}"
                )
        elif intent.refused and found:
            problems.append(
                f"{intent.channel} {intent.username} was refused ({intent.refused}) yet order {found} exists"
            )
        elif intent.gave_up and found:
            lost += 1  # placed, but every answer was lost on the way: allowed, and counted
    orphans = [link for link in by_link if link not in {i.link for i in intents}]
    problems += [f"order for {link} matches no request" for link in orphans]
    return Check(
        "each request placed at most one order, and customers were told the truth",
        not problems,
        [
            f"{len(intents)} requests, {len(rows)} orders; {lost} placed although the customer gave up",
            *_examples(problems),
        ],
    )


def check_provider() -> Check:
    from providers.models import Provider

    paused = [f"{p.name}: {p.paused_reason}" for p in Provider.objects.exclude(paused_reason="")]
    return Check("no provider left paused", not paused, paused)


def check_statuses(*, api_url: str, key: str) -> Check:
    """Every order sent upstream ends where the provider says it ended (so refunds follow truth)."""
    import requests

    from orders.models import TERMINAL_STATUSES, Order, State

    rows = list(
        Order.objects.filter(state=State.SENT)
        .values_list("id", "provider_order_id", "status", "remains")
        .order_by("id")
    )
    problems: list[str] = []
    behind = 0
    for start in range(0, len(rows), 100):
        chunk = rows[start : start + 100]
        reply = requests.post(
            api_url, data={"key": key, "action": "status", "orders": ",".join(str(r[1]) for r in chunk)}, timeout=30
        ).json()
        for pk, pid, status, remains in chunk:
            theirs = reply.get(str(pid), {})
            if "status" not in theirs:
                problems.append(f"order #{pk}: the provider does not know #{pid}: {theirs}")
            elif theirs["status"] != status:
                if theirs["status"] in TERMINAL_STATUSES or status in TERMINAL_STATUSES:
                    problems.append(f"order #{pk} is {status} here, {theirs['status']} at the provider")
                else:
                    behind += 1
            elif status == "Partial" and int(theirs["remains"]) != remains:
                problems.append(f"order #{pk} Partial with remains {remains} here, {theirs['remains']} upstream")
    return Check(
        "final statuses and remains agree with the provider",
        not problems,
        [f"{len(rows)} sent orders compared; {behind} not yet synced to a newer active status", *_examples(problems)],
    )


def sending_attempts(transitions: Iterable[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
    """Walk one order's (from_state, to_state, reason) history through `sending`.

    Returns how each attempt ended (the reason of its one way out) and the problems: an attempt
    left twice (two workers or a worker and the sweep both settled it), a way out of `sending`
    with no attempt in it, or an attempt never left.
    """
    from orders.models import State

    ends: list[str] = []
    problems: list[str] = []
    inside = False
    for from_state, to_state, reason in transitions:
        if from_state == to_state:
            continue
        if to_state == State.SENDING:
            if inside:
                problems.append(f"entered sending again without leaving it ({reason})")
            inside = True
        elif from_state == State.SENDING:
            if not inside:
                problems.append(f"left sending a second time: {from_state} → {to_state} ({reason})")
            else:
                ends.append(f"{to_state}: {reason}")
            inside = False
    if inside:
        problems.append("still sending")
    return ends, problems


def check_host_cut(cut: HostCut | None) -> Check:
    """--hosts: the submissions in flight on the host cut off were each settled exactly once."""
    from orders.models import OrderEvent

    name = "the orders in flight on the host cut off were settled exactly once"
    if cut is None:
        return Check(name, False, ["the host cut did not happen"])
    if not cut.in_flight:
        return Check(name, False, [f"no submit task was seen in flight on {cut.worker} when {cut.host} was cut off"])
    lines = [
        f"{cut.host} ({cut.worker}) cut off for {cut.ended - cut.started:.0f} s with {len(cut.in_flight)} in flight"
    ]
    ok = True
    for pk in cut.in_flight:
        events = OrderEvent.objects.filter(order_id=pk).order_by("id").values_list("from_state", "to_state", "reason")
        ends, problems = sending_attempts(events)
        ok = ok and not problems and bool(ends)
        lines.append(f"order #{pk}: {len(ends)} attempt(s), ended " + "; then ".join(e[:90] for e in ends))
        lines += [f"  order #{pk}: {p}" for p in problems]
    return Check(name, ok, lines)
