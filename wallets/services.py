"""Writes to the wallet: the ledger, deposits, bonuses and affiliate commissions.

Every movement of money goes through `wallet_credit` / `wallet_debit`. Each one, in a
single transaction (a savepoint when the caller already has one), changes the cached
balance with one conditional UPDATE and inserts the ledger entry. The entry's unique
idempotency key makes a retry, a double click or a replayed notification a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kernel.money import money, percent_of, to_decimal
from kernel.protocol import ERR_NOT_ENOUGH_FUNDS

from . import conf
from .affiliates import affiliate_get_or_create as affiliate_get_or_create
from .affiliates import affiliate_record_visit as affiliate_record_visit
from .gateways.base import GatewayError, GatewayRefusal, Kind, Notification
from .gateways.registry import gateway_get
from .models import Entry, Payment, Wallet
from .quotes import QuoteError, payment_quote
from .reversals import MONEY_BACK, debt_collect, payment_money_back
from .reversals import payment_reinstate as payment_reinstate
from .reversals import payment_reverse as payment_reverse
from .selectors import GatewayConfig, bonus_for_amount, gateway_config_get

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

CREDIT_KINDS = frozenset(
    {Entry.Kind.DEPOSIT, Entry.Kind.BONUS, Entry.Kind.REFUND, Entry.Kind.ADJUSTMENT, Entry.Kind.COMMISSION}
)
DEBIT_KINDS = frozenset({Entry.Kind.CHARGE, Entry.Kind.ADJUSTMENT})
# 18 digits with 5 decimals leave 13 before the point.
MAX_AMOUNT = Decimal("1e13")
MAX_PENDING_MANUAL_PAYMENTS = 5
CENT = Decimal("0.01")


class WalletError(Exception):
    """A wallet rule said no. The message is meant for the person who asked."""


class InsufficientFunds(WalletError):
    def __init__(self, message: str = ERR_NOT_ENOUGH_FUNDS) -> None:
        super().__init__(message)


class IdempotencyConflict(WalletError):
    """The key was already used for a different movement: a bug in the caller, never retried."""


# --- The ledger --------------------------------------------------------------------------


def wallet_credit(
    *,
    user: User,
    amount: Decimal,
    kind: str,
    idempotency_key: str,
    memo: str = "",
    actor: User | None = None,
    payment: Payment | None = None,
    order_ref: int | None = None,
) -> Entry:
    """Add `amount` (> 0) to the user's balance and record it; once per idempotency key."""
    if kind not in CREDIT_KINDS:
        raise ValueError(f"{kind!r} is not a credit kind")
    return _post(
        user=user,
        delta=_checked_amount(amount),
        kind=kind,
        idempotency_key=idempotency_key,
        memo=memo,
        actor=actor,
        payment=payment,
        order_ref=order_ref,
    )


def wallet_debit(
    *,
    user: User,
    amount: Decimal,
    kind: str,
    idempotency_key: str,
    memo: str = "",
    actor: User | None = None,
    order_ref: int | None = None,
) -> Entry:
    """Take `amount` (> 0) from the user's balance and record it; once per idempotency key.

    Raises InsufficientFunds, changing nothing, when the balance is short.
    """
    if kind not in DEBIT_KINDS:
        raise ValueError(f"{kind!r} is not a debit kind")
    return _post(
        user=user,
        delta=-_checked_amount(amount),
        kind=kind,
        idempotency_key=idempotency_key,
        memo=memo,
        actor=actor,
        payment=None,
        order_ref=order_ref,
    )


def wallet_adjust(
    *, user: User, amount: Decimal, reason: str, actor: User, idempotency_key: str | None = None
) -> Entry:
    """A staff member adds (amount > 0) or deducts (amount < 0) funds by hand, with a reason.

    The admin form passes a key generated when the form was shown, so a double submit
    adjusts once.
    """
    reason = (reason or "").strip()
    if not reason:
        raise WalletError(_("A reason is required."))
    if actor is None or not actor.is_staff:
        raise WalletError(_("Only staff can adjust balances."))
    if actor.pk == user.pk:
        raise WalletError(_("Staff cannot adjust their own balance."))
    if not isinstance(amount, Decimal) or amount == 0:
        raise WalletError(_("The amount must not be zero."))
    key = idempotency_key or f"adjust:{uuid4().hex}"
    if amount > 0:
        return wallet_credit(
            user=user, amount=amount, kind=Entry.Kind.ADJUSTMENT, idempotency_key=key, memo=reason, actor=actor
        )
    return wallet_debit(
        user=user, amount=-amount, kind=Entry.Kind.ADJUSTMENT, idempotency_key=key, memo=reason, actor=actor
    )


def _checked_amount(amount: Decimal) -> Decimal:
    if not isinstance(amount, Decimal):
        raise TypeError("money amounts are Decimal")
    if not amount.is_finite() or amount <= 0:
        raise WalletError(_("The amount must be positive."))
    if money(amount) != amount:
        raise WalletError(_("Amounts have at most 5 decimal places."))
    if amount >= MAX_AMOUNT:
        raise WalletError(_("The amount is too large."))
    return amount


def _post(
    *,
    user: User,
    delta: Decimal,
    kind: str,
    idempotency_key: str,
    memo: str,
    actor: User | None,
    payment: Payment | None,
    order_ref: int | None,
) -> Entry:
    if not idempotency_key or len(idempotency_key) > 128:
        raise ValueError("an idempotency key of 1 to 128 characters is required")
    try:
        # A savepoint when the caller has a transaction (order placing does): a failure
        # below undoes the balance change and leaves the caller's transaction usable.
        with transaction.atomic():
            balance_after = _move_balance(user_id=user.pk, delta=delta)
            # The entry goes in after the balance row is locked by the UPDATE, so a user's
            # entries get ids in the order their balance changed (the audit relies on it).
            return Entry.objects.create(
                user_id=user.pk,
                amount=delta,
                kind=kind,
                idempotency_key=idempotency_key,
                memo=memo[:255],
                actor=actor,
                payment=payment,
                order_ref=order_ref,
                balance_after=balance_after,
            )
    except IntegrityError:
        # Most likely the key exists: a concurrent or earlier call moved the money. The
        # unique index decided, not a read before the write.
        existing = Entry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
    except InsufficientFunds:
        # A retry after the money already moved can find the balance short: answer it
        # with the entry it asked for rather than an error.
        existing = Entry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
    same = (
        existing.user_id == user.pk
        and existing.amount == delta
        and existing.kind == kind
        and existing.order_ref == order_ref
        and existing.payment_id == (payment.pk if payment else None)
    )
    if not same:
        raise IdempotencyConflict(f"Idempotency key {idempotency_key!r} was already used for a different entry.")
    return existing


def _move_balance(*, user_id: int, delta: Decimal) -> Decimal:
    """Apply delta to the balance, or raise InsufficientFunds; returns the new balance.

    Runs inside the caller's transaction. A debit is one conditional UPDATE ... WHERE
    balance >= amount, never a read followed by a write: two concurrent debits cannot both
    spend the same money, and the row stays locked until the transaction ends.
    """
    balance = _update_balance(user_id=user_id, delta=delta)
    if balance is None and delta > 0:
        # First credit: create the wallet. ON CONFLICT DO NOTHING makes a concurrent first
        # credit wait for the other insert instead of failing.
        Wallet.objects.bulk_create([Wallet(user_id=user_id)], ignore_conflicts=True)
        balance = _update_balance(user_id=user_id, delta=delta)
    if balance is None:
        raise InsufficientFunds()  # short, or no wallet yet (an empty one)
    return money(to_decimal(balance))


def _update_balance(*, user_id: int, delta: Decimal) -> Any:
    """The compare-and-set itself; the new balance, or None when no row matched.

    Written out because the ORM's update() cannot say RETURNING: reading the new balance
    in the same statement saves a round trip while the row lock is held, which is what
    bounds debits per second on one busy wallet. ROUND keeps SQLite's float decimals from
    drifting (there 0.3 - 0.1 - 0.2 is -2.8e-17 and would trip the >= 0 constraint); on
    PostgreSQL's exact numeric it changes nothing.
    """
    qn = connection.ops.quote_name
    table, balance, user = qn(Wallet._meta.db_table), qn("balance"), qn("user_id")
    sql = f"UPDATE {table} SET {balance} = ROUND({balance} + %s, 5) WHERE {user} = %s"  # noqa: S608  (identifiers only)
    params: list[Any] = [delta, user_id]
    if delta < 0:
        sql += f" AND {balance} >= %s"
        params.append(-delta)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {balance}", params)
        row = cursor.fetchone()
    return None if row is None else row[0]


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
    _checked_amount(amount)
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
