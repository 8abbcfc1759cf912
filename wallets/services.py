"""Writes to the wallet: deposits, bonuses and affiliate commissions, and the ledger's
writes (wallets.ledger, re-exported here) that every movement of money goes through.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kernel.money import money, percent_of

from . import conf
from .affiliates import affiliate_get_or_create as affiliate_get_or_create
from .affiliates import affiliate_record_visit as affiliate_record_visit
from .gateways.base import GatewayError, GatewayRefusal, Kind, Notification
from .gateways.registry import gateway_get
from .ledger import MAX_AMOUNT as MAX_AMOUNT
from .ledger import IdempotencyConflict as IdempotencyConflict
from .ledger import InsufficientFunds as InsufficientFunds
from .ledger import Owing as Owing
from .ledger import WalletError as WalletError
from .ledger import checked_amount
from .ledger import wallet_adjust as wallet_adjust
from .ledger import wallet_charge_order as wallet_charge_order
from .ledger import wallet_credit as wallet_credit
from .ledger import wallet_debit as wallet_debit
from .models import Entry, Payment
from .quotes import QuoteError, payment_quote
from .reversals import MONEY_BACK, debt_collect, payment_money_back
from .reversals import payment_reinstate as payment_reinstate
from .reversals import payment_reverse as payment_reverse
from .selectors import GatewayConfig, bonus_for_amount, gateway_config_get

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

MAX_PENDING_MANUAL_PAYMENTS = 5
CENT = Decimal("0.01")


# --- Deposits ----------------------------------------------------------------------------
#
# Every gateway goes through the same three steps: `payment_start` creates the payment and
# asks the gateway to start it; `payment_notify` applies what a hosted gateway reports;
# `payment_settle` (the only path that credits a deposit) and `payment_fail` end it.


@dataclass(frozen=True)
class Started:
    payment: Payment
    redirect_url: str  # hosted: where to send the customer
    message: str  # manual: what to tell the customer


def _check_limits(*, amount: Decimal, limits: tuple[Decimal, Decimal]) -> None:
    minimum, maximum = limits
    limit = {"amount": f"{min(max(amount, minimum), maximum).normalize():f}", "currency": conf.currency()}
    if amount < minimum:
        raise WalletError(_("The minimum deposit is %(amount)s %(currency)s.") % limit)
    if amount > maximum:
        raise WalletError(_("The maximum deposit is %(amount)s %(currency)s.") % limit)


def fee_for(*, amount: Decimal, percent: Decimal) -> Decimal:
    """A gateway's fee on a deposit: a charge, so rounded half-up, to whole cents."""
    return (amount * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def payment_start(
    *, user: User, gateway: str, amount: Decimal, data: Mapping[str, Any] | None = None, return_url: str = ""
) -> Started:
    """Create a pending payment through `gateway` and start it there.

    A hosted gateway's payment is committed before the gateway is called (never inside a
    transaction with the network); if the call fails, the payment is failed and the
    customer is told to try again. A manual gateway only records the customer's report.
    """
    data = data or {}
    config = gateway_config_get(code=gateway)
    if config is None or not config.enabled:
        raise WalletError(_("This payment method is not available."))
    checked_amount(amount)
    _check_limits(amount=amount, limits=(config.minimum, config.maximum))
    fee = fee_for(amount=amount, percent=config.fee_percent)
    currency = conf.currency()
    try:
        config.gateway.check(amount=amount + fee, currency=currency, data=data)
    except GatewayRefusal as exc:
        raise WalletError(str(exc)) from exc
    if config.gateway.kind is Kind.MANUAL:
        return _payment_start_manual(user=user, config=config, amount=amount, fee=fee, data=data)
    # Paid in another currency (PayPal in EUR): quoted now, at a rate that is not stale.
    try:
        quote = payment_quote(gateway=config.gateway, total=amount + fee)
    except QuoteError as exc:
        raise WalletError(str(exc)) from exc
    payment = Payment.objects.create(user=user, gateway=gateway, amount=amount, fee=fee, currency=currency, **quote)
    try:
        checkout = config.gateway.start(payment=payment, data=data, return_url=return_url)
    except GatewayError as exc:
        logger.warning("%s: starting payment %s failed: %s", gateway, payment.pk, exc)
        payment_fail(payment_id=payment.pk, note="Could not start the payment.")
        raise WalletError(_("The payment could not be started. Please try again later.")) from exc
    if checkout.reference:
        Payment.objects.filter(pk=payment.pk).update(external_ref=checkout.reference, updated_at=timezone.now())
        payment.external_ref = checkout.reference
    return Started(payment=payment, redirect_url=checkout.redirect_url, message=checkout.message)


def _payment_start_manual(
    *, user: User, config: GatewayConfig, amount: Decimal, fee: Decimal, data: Mapping[str, Any]
) -> Started:
    with transaction.atomic():
        # Parallel reports would all count the same pending rows and all pass: the customer's
        # row lock makes them count one after another.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        pending = Payment.objects.filter(user=user, gateway=config.code, status=Payment.Status.PENDING).count()
        if pending >= MAX_PENDING_MANUAL_PAYMENTS:
            raise WalletError(_("You have too many transfers waiting for review. Please wait for them to be checked."))
        payment = Payment.objects.create(
            user=user, gateway=config.code, amount=amount, fee=fee, currency=conf.currency()
        )
        # A manual gateway's start calls no network: it only reads the customer's report.
        checkout = config.gateway.start(payment=payment, data=data, return_url="")
        payment.external_ref = checkout.reference
        payment.save(update_fields=["external_ref", "updated_at"])
    return Started(payment=payment, redirect_url=checkout.redirect_url, message=checkout.message)


def _manual_payment(*, payment_id: int, actor: User, verb: str) -> Payment:
    if actor is None or not actor.is_staff:
        raise WalletError(f"Only staff can {verb} payments.")
    payment = Payment.objects.get(pk=payment_id)
    if gateway_get(payment.gateway).kind is not Kind.MANUAL:
        raise WalletError(
            f"Payment #{payment.pk} is a {payment.get_gateway_display()} payment; its gateway confirms it."
        )
    return payment


def payment_approve(*, payment_id: int, actor: User) -> Payment:
    """Staff approve a manual transfer: it becomes paid and is credited. Twice credits once."""
    payment = _manual_payment(payment_id=payment_id, actor=actor, verb="approve")
    if payment.user_id == actor.pk:
        raise WalletError(_("Nobody can approve their own payment."))
    return payment_settle(payment_id=payment.pk, actor=actor)


def payment_reject(*, payment_id: int, actor: User, reason: str = "") -> Payment:
    """Staff reject a manual transfer that never arrived. A paid payment cannot be rejected."""
    payment = _manual_payment(payment_id=payment_id, actor=actor, verb="reject")
    if payment.user_id == actor.pk:
        raise WalletError(_("Nobody can review their own payment."))
    return payment_fail(payment_id=payment.pk, note=(reason or "Rejected by staff.").strip(), actor=actor, strict=True)


def payment_cancel(*, user: User, payment_id: int) -> Payment:
    """A customer withdraws their own manual transfer report while it is still pending."""
    payment = Payment.objects.get(pk=payment_id, user=user)
    if gateway_get(payment.gateway).kind is not Kind.MANUAL or payment.status != Payment.Status.PENDING:
        raise WalletError(_("Only a pending transfer can be cancelled."))
    try:
        return payment_fail(payment_id=payment.pk, note="Cancelled by the customer.", strict=True)
    except WalletError:
        raise WalletError(_("Only a pending transfer can be cancelled.")) from None


def payment_notify(*, gateway: str, notification: Notification) -> Payment | None:
    """Apply a verified notification. Replays and duplicates are harmless: money moves once.

    None when it is about no payment of ours (logged). The gateway may read the payment
    back before we act (`Gateway.confirm`): a network call, made before any transaction.
    """
    if notification.report is None:
        return None
    payment = _payment_for_reference(gateway=gateway, notification=notification)
    if payment is None:
        logger.warning(
            "%s notification %s for an unknown payment %s", gateway, notification.event_id, notification.reference
        )
        return None
    report = gateway_get(gateway).confirm(payment=payment, notification=notification)
    raw = notification.raw
    if report is not None and (report.reversal or report.status in MONEY_BACK):
        return payment_money_back(payment=payment, notification=notification, report=report)
    if report is not None and report.charge_ref and not payment.charge_ref:
        Payment.objects.filter(pk=payment.pk).update(charge_ref=report.charge_ref[:255])
    if report is None or report.status == Payment.Status.PENDING:
        _payment_note(payment_id=payment.pk, raw_notification=raw)
        return payment
    if report.status == Payment.Status.FAILED:
        return payment_fail(payment_id=payment.pk, note=report.note or f"{gateway}: failed", raw_notification=raw)
    if report.status != Payment.Status.PAID:
        logger.error("%s notification %s reports %s: not applied", gateway, notification.event_id, report.status)
        _payment_note(payment_id=payment.pk, raw_notification=raw, note=f"Gateway reports {report.status}: check.")
        return payment
    if report.credit is not None:
        # Paid in another currency or another amount: credit what arrived, at most the amount.
        if report.credit <= 0:
            _payment_note(payment_id=payment.pk, raw_notification=raw, note="Nothing arrived to credit: check.")
            return payment
        return payment_settle(payment_id=payment.pk, raw_notification=raw, late=True, credit_amount=report.credit)
    if report.amount != payment.total or report.currency != payment.currency:
        logger.error(
            "%s notification %s: amount or currency does not match payment %s",
            gateway,
            notification.event_id,
            payment.pk,
        )
        note = f"{payment.get_gateway_display()} amount or currency mismatch: check."
        _payment_note(payment_id=payment.pk, raw_notification=raw, note=note)
        return payment
    # The gateway took the money: credit even a payment we had given up on.
    return payment_settle(payment_id=payment.pk, raw_notification=raw, late=True)


def payment_return(*, user: User, gateway: str, reference: str) -> Payment | None:
    """The customer came back from the gateway's page with its reference for one of their
    payments: apply what the gateway says now (PayPal is paid only once the panel captures).
    A reference of another customer's payment, or of none, is None and changes nothing."""
    payment = Payment.objects.filter(user=user, gateway=gateway, external_ref=reference).first()
    if payment is None or not reference:
        return None
    if payment.status != Payment.Status.PENDING:
        return payment
    notification = gateway_get(gateway).complete_return(payment=payment)
    if notification is None:
        return payment
    return payment_notify(gateway=gateway, notification=notification)


def _payment_for_reference(*, gateway: str, notification: Notification) -> Payment | None:
    if not notification.reference:
        return None
    found = Payment.objects.filter(gateway=gateway, external_ref=notification.reference).first()
    if found is None:
        # Later events of some gateways (Stripe's refunds, disputes) name the money movement.
        found = Payment.objects.filter(gateway=gateway, charge_ref=notification.reference).first()
    if found is None and notification.payment_id is not None:
        # We crashed between starting the payment and storing the gateway's reference: our own
        # id, echoed back inside the signed notification, finds it (the amount is still checked).
        found = Payment.objects.filter(pk=notification.payment_id, gateway=gateway, external_ref="").first()
    return found


def _payment_note(*, payment_id: int, raw_notification: dict[str, Any], note: str | None = None) -> None:
    fields: dict[str, Any] = {"raw_notification": raw_notification, "updated_at": timezone.now()}
    if note is not None:
        fields["note"] = note
    Payment.objects.filter(pk=payment_id).update(**fields)


def payment_fail(
    *,
    payment_id: int,
    note: str,
    actor: User | None = None,
    raw_notification: dict[str, Any] | None = None,
    strict: bool = False,
) -> Payment:
    """The one failure and expiry path: a pending payment becomes failed and moves no money.

    Failing a failed payment changes nothing. A paid or refunded one stays as it is: with
    `strict` (a person asked) that is an error, otherwise (a late notification) ignored.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status == Payment.Status.FAILED:
            return payment
        if payment.status != Payment.Status.PENDING:
            if strict:
                raise WalletError(
                    f"Payment #{payment.pk} is {payment.get_status_display().lower()}; it cannot be rejected."
                )
            return payment
        payment.status = Payment.Status.FAILED
        payment.note = note[:255]
        update_fields = ["status", "note", "updated_at"]
        if actor is not None:
            payment.reviewed_by = actor
            update_fields.append("reviewed_by")
        if raw_notification is not None:
            payment.raw_notification = raw_notification
            update_fields.append("raw_notification")
        payment.save(update_fields=update_fields)
    return payment


def payment_settle(
    *,
    payment_id: int,
    actor: User | None = None,
    raw_notification: dict[str, Any] | None = None,
    late: bool = False,
    credit_amount: Decimal | None = None,
) -> Payment:
    """The one path that credits a deposit: mark the payment paid and credit the deposit,
    its bonus and the referrer's commission, atomically and once.

    `credit_amount` is what arrived when it is not the amount asked (an underpayment, or a
    payment in another currency converted at the rate quoted at creation): that much is
    credited, never more than the amount; the bonus and commission follow what is credited.

    What the customer owes (a chargeback after the money was spent) is paid from the
    balance next, in the same transaction (`debt_collect`, key `payment:<id>:debt`).

    `late` also settles a failed payment (a gateway took the money after we gave up on
    it). The row lock makes concurrent confirmations queue; the second sees `paid` and
    stops. The ledger keys (`payment:<id>:deposit`, `:bonus`, `:commission`) would stop it
    anyway.
    """
    allowed = {Payment.Status.PENDING, Payment.Status.FAILED} if late else {Payment.Status.PENDING}
    with transaction.atomic():
        payment = Payment.objects.select_for_update(of=("self",)).select_related("user__referred_by").get(pk=payment_id)
        if payment.status in (Payment.Status.PAID, Payment.Status.PARTLY_REFUNDED, Payment.Status.REFUNDED):
            return payment
        if payment.status not in allowed:
            raise WalletError(f"Payment #{payment.pk} is {payment.get_status_display().lower()}; it cannot be paid.")
        payment.status = Payment.Status.PAID
        payment.paid_at = timezone.now()
        credited = payment.amount if credit_amount is None else min(money(credit_amount), payment.amount)
        if credited <= 0:
            raise WalletError(f"Payment #{payment.pk}: nothing arrived to credit.")
        payment.credited = credited
        update_fields = ["status", "paid_at", "credited", "updated_at"]
        if actor is not None:
            payment.reviewed_by = actor
            update_fields.append("reviewed_by")
        if raw_notification is not None:
            payment.raw_notification = raw_notification
            update_fields.append("raw_notification")
        payment.save(update_fields=update_fields)
        _payment_credit(payment=payment, actor=actor)
        debt_collect(payment=payment)
    return payment


def _payment_credit(*, payment: Payment, actor: User | None) -> None:
    customer = payment.user
    amount = payment.credited if payment.credited is not None else payment.amount
    credits: list[tuple[User, Decimal, str, str, str]] = [
        (customer, amount, Entry.Kind.DEPOSIT, "deposit", f"Deposit #{payment.pk} ({payment.gateway})")
    ]
    tier, bonus = bonus_for_amount(amount=amount)
    if tier is not None and bonus > 0:
        credits.append((customer, bonus, Entry.Kind.BONUS, "bonus", f"Bonus {tier.percent}% on deposit #{payment.pk}"))
    referrer = customer.referred_by
    if referrer is not None and referrer.is_active and referrer.pk != customer.pk:
        commission = percent_of(amount, conf.affiliate_percent())
        if commission > 0:
            memo = f"Referral commission on deposit #{payment.pk}"
            credits.append((referrer, commission, Entry.Kind.COMMISSION, "commission", memo))
    # Wallet rows are locked in user-id order so two settlements (customer and referrer
    # referring each other) cannot deadlock.
    for user, amount, kind, suffix, memo in sorted(credits, key=lambda c: c[0].pk):
        wallet_credit(
            user=user,
            amount=amount,
            kind=kind,
            idempotency_key=f"payment:{payment.pk}:{suffix}",
            memo=memo,
            actor=actor,
            payment=payment,
        )
