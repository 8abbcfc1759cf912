"""Writes for orders, one module a responsibility:

- parsing: what a customer may ask for, by the rules of the service type;
- placing: check, charge and queue one order in one transaction (the outbox);
- transitions: the one writer of status and state, and the refunds that come with them;
- outbox: enqueueing tasks after commit;
- submission: exactly once upstream, and the sweeper;
- sync: status sync, refunds and margin reconciliation;
- requests: refills and cancels forwarded to the provider;
- staff: the admin's actions.

The promise (DESIGN.md): every order is bought upstream exactly once or refunded.
"""

from .base import OrderError, RequestOutcome, SubmitOutcome, SyncOutcome
from .outbox import enqueue_cancel, enqueue_refill, enqueue_submit
from .parsing import LABELS, OrderRequest, error_field, link_complete, link_is_valid, order_amount, order_request_parse
from .placing import order_place
from .requests import (
    REQUEST_REJECTED,
    REQUEST_REQUEUE,
    REQUEST_SENT,
    cancel_request,
    cancel_submit,
    refill_request,
    refill_submit,
    refill_sync_chunk,
    refills_sync_plan,
    upstream_requests_resolve_unknown,
)
from .staff import (
    RESOLVE_CANCEL,
    RESOLVE_PLACED,
    RESOLVE_REQUEUE,
    order_cancel_refund,
    order_mark_completed,
    order_resend,
    order_resolve_unknown,
    order_set_partial,
    orders_resolve_unknown,
    provider_ids_match,
)
from .submission import order_submit, orders_sweep
from .sync import expected_provider_charge, order_sync_chunk, orders_sync_plan
from .transitions import order_profit, order_transition, refund_amount

__all__ = [
    "LABELS",
    "REQUEST_REJECTED",
    "REQUEST_REQUEUE",
    "REQUEST_SENT",
    "RESOLVE_CANCEL",
    "RESOLVE_PLACED",
    "RESOLVE_REQUEUE",
    "OrderError",
    "OrderRequest",
    "RequestOutcome",
    "SubmitOutcome",
    "SyncOutcome",
    "cancel_request",
    "cancel_submit",
    "enqueue_cancel",
    "enqueue_refill",
    "enqueue_submit",
    "error_field",
    "expected_provider_charge",
    "link_complete",
    "link_is_valid",
    "order_amount",
    "order_cancel_refund",
    "order_mark_completed",
    "order_place",
    "order_profit",
    "order_request_parse",
    "order_resend",
    "order_resolve_unknown",
    "order_set_partial",
    "order_submit",
    "order_sync_chunk",
    "order_transition",
    "orders_resolve_unknown",
    "orders_sweep",
    "orders_sync_plan",
    "provider_ids_match",
    "refill_request",
    "refill_submit",
    "refill_sync_chunk",
    "refills_sync_plan",
    "refund_amount",
    "upstream_requests_resolve_unknown",
]
