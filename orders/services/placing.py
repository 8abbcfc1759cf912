"""Placing: check, charge and queue one order in one transaction (the outbox)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_UP, Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from catalog.models import Route, RoutingPolicy, Service
from catalog.pricing import cost_per_1000
from catalog.quality import Eta, eta_for, quality_of
from catalog.routing import RoutingChoice, route_choose
from catalog.selectors import routes_measured, service_for_sale_with_routes, service_price_for_user
from kernel import db as kernel_db
from kernel import protocol
from kernel.db import first_or_none
from kernel.numbers import InvalidNumber, parse_int
from wallets import conf
from wallets.services import InsufficientFunds, Owing, wallet_charge_order

from ..models import (
    ACTIVE_STATUSES,
    Order,
    OrderEvent,
    RoutingDecision,
    State,
    Status,
)

if TYPE_CHECKING:
    from accounts.models import User
from .. import queries
from . import outbox
from .base import SUBSCRIPTIONS, OrderError
from .parsing import IDEMPOTENCY_KEY_MAX, OrderRequest, _fingerprint, order_amount, order_request_parse


def order_place(*, user: User, service_id: Any, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Order:
    """Check, charge and queue one order. Web pages, mass order and the API all call this.

    Raises OrderError with a message from API_V2.md (or a plain one for type-specific
    fields); nothing is charged, created or queued then.
    """
    key = (idempotency_key or "").strip() or None
    fingerprint = _fingerprint(service_id=service_id, fields=fields)
    if key is not None:
        if len(key) > IDEMPOTENCY_KEY_MAX:
            raise OrderError(
                _("The idempotency key can have at most %(limit)s characters") % {"limit": IDEMPOTENCY_KEY_MAX}
            )
        existing = _order_for_key(user=user, key=key, fingerprint=fingerprint)
        if existing is not None:
            return existing

    try:
        pk = parse_int(service_id)
    except InvalidNumber:
        raise OrderError(_(protocol.ERR_INCORRECT_SERVICE)) from None
    service, routes, custom_rates = service_for_sale_with_routes(pk=pk, customer=user)
    if service is None:
        raise OrderError(_(protocol.ERR_INCORRECT_SERVICE))
    request = order_request_parse(service=service, fields=fields)
    if not routes:
        # Nothing could ever deliver it; do not take the money.
        raise OrderError(_(protocol.ERR_INCORRECT_SERVICE))
    price = service_price_for_user(service=service, user=user, custom_rates=custom_rates)
    charge = order_amount(rate=price, quantity=request.quantity, billing=request.billing)
    if charge <= 0:
        raise OrderError(_("The charge for this order rounds to zero: order a larger quantity"))

    def cost_of(route: Route) -> Decimal:
        rate = cost_per_1000(upstream_rate=route.upstream.rate, exchange_rate=route.upstream.provider.exchange_rate)
        return order_amount(rate=rate, quantity=request.quantity, billing=request.billing)

    if service.routing_policy == RoutingPolicy.BEST and len(routes) > 1:
        routes_measured(routes)  # the routes' figures, one query
    # The route the policy sends it to, so its recorded cost is the one it will be bought
    # at. Submission chooses again (a probe of a demoted route, a route that failed since).
    choice = route_choose(
        service=service,
        routes=routes,
        charge=charge,
        quantity=request.quantity,
        cost_of=cost_of,
        claim_probe=False,
    )
    # Only paused providers, demoted routes or routes above the charge: the order is taken
    # and submission waits or refunds; it is priced meanwhile on the first route that does
    # not sell below cost, if any.
    route = choice.route or next((r for r in routes if cost_of(r) <= charge), routes[0])
    provider_rate = route.upstream.rate
    cost = cost_of(route)

    eta = eta_for(
        figures=quality_of(service),
        quantity=request.quantity,
        paced=bool(request.runs) or service.type == SUBSCRIPTIONS,
    )
    try:
        return _order_create(
            user=user,
            eta=eta,
            service=service,
            route=route,
            choice=choice,
            request=request,
            price=price,
            charge=charge,
            provider_rate=provider_rate,
            cost=cost,
            key=key,
            fingerprint=fingerprint,
        )
    except IntegrityError:
        # Two requests with the same idempotency key raced; the other one won.
        if key is None:
            raise
        existing = _order_for_key(user=user, key=key, fingerprint=fingerprint)
        if existing is None:
            raise
        return existing


def _order_for_key(*, user: User, key: str, fingerprint: str) -> Order | None:
    existing = Order.objects.filter(user=user, idempotency_key=key).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise OrderError(_("This idempotency key was already used for a different order"))
    return existing


def _order_create(
    *,
    user: User,
    service: Service,
    route: Route,
    choice: RoutingChoice,
    request: OrderRequest,
    price: Decimal,
    charge: Decimal,
    provider_rate: Decimal,
    cost: Decimal,
    key: str | None,
    fingerprint: str,
    eta: Eta | None = None,
) -> Order:
    written_out = kernel_db.written_out()  # orders/queries.py; the ORM elsewhere
    with transaction.atomic():
        if request.link and not service.allow_duplicate_link:
            # Serialises this customer's placements so two parallel requests cannot both
            # pass the duplicate-link check. Lock order: user row, then the wallet row.
            # NO KEY UPDATE, so it does not block the FOR KEY SHARE that PostgreSQL takes on
            # the user row when another transaction (a refund holding the wallet row) checks
            # its ledger entry's foreign key at commit: FOR UPDATE made that a deadlock.
            if written_out:
                queries.placing_lock_customer(user_id=user.pk)
            else:
                first_or_none(
                    get_user_model()
                    .objects.select_for_update(no_key=True)
                    .filter(pk=user.pk)
                    .values_list("pk", flat=True)
                )
            if key is not None:
                # A retry with the same key that waited for this lock behind the first
                # attempt gets the first attempt's order, not a duplicate-link error.
                earlier = _order_for_key(user=user, key=key, fingerprint=fingerprint)
                if earlier is not None:
                    return earlier
            # Written out, the check is part of the order's INSERT (below).
            if (
                not written_out
                and Order.objects.filter(
                    user=user, service=service, status__in=ACTIVE_STATUSES, link=request.link
                ).exists()
            ):
                raise OrderError(_(protocol.ERR_DUPLICATE_LINK))
        order = Order(
            user=user,
            service=service,
            service_type=service.type,
            route=route,
            provider=route.upstream.provider,
            external_service_id=route.upstream.external_id,
            link=request.link,
            quantity=request.quantity,
            billing=request.billing,
            runs=request.runs,
            interval=request.interval,
            fields=request.fields,
            price_per_1000=price,
            charge=charge,
            provider_rate=provider_rate,
            cost=cost,
            status=Status.PENDING,
            state=State.QUEUED,
            idempotency_key=key,
            request_fingerprint=fingerprint,
            eta_start_seconds=eta.start_seconds if eta else None,
            eta_complete_seconds=eta.complete_seconds if eta else None,
            eta_sample=eta.sample if eta else None,
        )
        decision = RoutingDecision(
            order=order,
            stage=RoutingDecision.Stage.PLACING,
            route=choice.route,
            policy=choice.policy,
            reason=choice.reason[:1000],
            candidates=choice.candidates,
        )
        event = OrderEvent(
            order=order,
            to_status=order.status,
            to_state=order.state,
            reason=f"placed, charged {charge}",
            actor=user,
        )
        if written_out:
            guarded = bool(request.link) and not service.allow_duplicate_link
            pk = queries.order_insert_placed(order=order, decision=decision, event=event, unless_duplicate=guarded)
            if pk is None:
                raise OrderError(_(protocol.ERR_DUPLICATE_LINK))
        else:
            order.save(force_insert=True)  # the decision and the event take its id when saved
            decision.save(force_insert=True)
            event.save(force_insert=True)
        try:
            # Refused, in the same statement, while the customer owes from a reversed payment.
            wallet_charge_order(user=user, amount=charge, order_ref=order.pk)
        except InsufficientFunds:
            raise OrderError(_(protocol.ERR_NOT_ENOUGH_FUNDS)) from None
        except Owing as owing:
            owed = owing.debt.quantize(Decimal("0.01"), rounding=ROUND_UP)  # never shows less than is owed
            raise OrderError(
                _("Your account owes %(amount)s %(currency)s from a reversed payment: add funds to pay it first")
                % {"amount": owed, "currency": conf.currency()}
            ) from None
        transaction.on_commit(partial(outbox.enqueue_submit, order_id=order.pk), robust=True)
    return order
