"""How orders and refills move: a heap of due steps, natural outcomes, refunds, eviction."""

from __future__ import annotations

import heapq
from decimal import Decimal

from kernel import protocol as p
from kernel.money import refund_for_remains
from simulators.provider.listener import Listener
from simulators.provider.state import REFILL_TERMINAL, SimOrder, SimRefill


class OrderProgression(Listener):
    """Orders and refills step on a schedule (or when told to), reaching an outcome drawn once from the seed."""

    def _schedule(self, o: SimOrder, base: float) -> None:
        if self.speed is None or o.held or o.status in p.TERMINAL_STATUSES:
            o.next_at = None
            return
        o.next_at = base + self.speed
        heapq.heappush(self._heap, (o.next_at, next(self._seq), 0, o.id))

    def _schedule_refill(self, r: SimRefill, base: float) -> None:
        if self.speed is None or r.held or r.status in REFILL_TERMINAL:
            r.next_at = None
            return
        r.next_at = base + self.speed
        heapq.heappush(self._heap, (r.next_at, next(self._seq), 1, r.id))

    def _process_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, kind, ident = heapq.heappop(heap)
            if kind == 0:
                order = self._orders.get(ident)
                if order is not None and order.next_at == at:
                    self._step_order(order, at)
            else:
                refill = self._refills.get(ident)
                if refill is not None and refill.next_at == at:
                    self._step_refill(refill, at)

    def _natural_outcome(self, o: SimOrder) -> tuple[str, int]:
        if o.outcome is not None:
            return o.outcome
        if o.roll < self.canceled:
            return p.CANCELED, o.quantity
        if o.roll < self.canceled + self.partial and o.quantity >= 2:
            return p.PARTIAL, 1 + int(o.roll_remains * (o.quantity - 1))
        return p.COMPLETED, 0

    def _step_order(self, o: SimOrder, at: float) -> None:
        o.held = False
        if o.status in p.TERMINAL_STATUSES:
            return
        if o.cancel_requested:
            self._finish(o, p.CANCELED, o.quantity)
            return
        if o.status == p.PENDING:
            o.status = p.IN_PROGRESS
            final_status, final_remains = self._natural_outcome(o)
            o.outcome = (final_status, final_remains)
            o.remains = o.quantity if final_status == p.CANCELED else final_remains + (o.quantity - final_remains) // 2
            self._schedule(o, at)
            return
        self._finish(o, *self._natural_outcome(o))

    def _finish(self, o: SimOrder, status: str, remains: int) -> None:
        o.status = status
        o.remains = remains
        o.next_at = None
        o.held = False
        if status == p.CANCELED:
            target = o.charge
        elif status == p.PARTIAL:
            target = refund_for_remains(charge=o.charge, remains=remains, quantity=o.quantity)
        else:
            target = Decimal("0")
        self._settle(o, target)
        if self._active.pop(o.id, None) is not None:
            link_key = (o.key, o.service, o.link)
            left = self._open_links.get(link_key, 1) - 1
            if left > 0:
                self._open_links[link_key] = left
            else:
                self._open_links.pop(link_key, None)
        self._finished.append(o.id)

    def _settle(self, o: SimOrder, target: Decimal) -> None:
        if target != o.refunded and o.key in self._balances:
            self._balances[o.key] += target - o.refunded
        o.refunded = target

    def _activate(self, o: SimOrder) -> None:
        if o.id not in self._active:
            self._active[o.id] = o
            link_key = (o.key, o.service, o.link)
            self._open_links[link_key] = self._open_links.get(link_key, 0) + 1

    def _step_refill(self, r: SimRefill, at: float) -> None:
        r.held = False
        if r.status in REFILL_TERMINAL:
            return
        if r.status == p.REFILL_PENDING:
            r.status = p.REFILL_IN_PROGRESS
            self._schedule_refill(r, at)
            return
        rejected = r.outcome == p.REFILL_REJECTED or (r.outcome is None and r.roll < self.refill_rejected)
        self._finish_refill(r, p.REFILL_REJECTED if rejected else p.REFILL_COMPLETED)

    def _finish_refill(self, r: SimRefill, status: str) -> None:
        r.status = status
        r.next_at = None
        r.held = False
        self._active_refills.pop(r.id, None)

    def _evict_orders(self) -> None:
        while len(self._orders) > self.max_orders:
            victim: SimOrder | None = None
            while self._finished and victim is None:
                candidate = self._orders.get(self._finished.popleft())
                if candidate is not None and candidate.status in p.TERMINAL_STATUSES:
                    victim = candidate
            if victim is None:
                victim = next(iter(self._orders.values()))
            self._orders.pop(victim.id)
            if self._active.pop(victim.id, None) is not None:
                link_key = (victim.key, victim.service, victim.link)
                self._open_links[link_key] = self._open_links.get(link_key, 1) - 1
                if self._open_links[link_key] <= 0:
                    self._open_links.pop(link_key)
