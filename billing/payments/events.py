"""Card payments: open a hosted checkout for an order, and apply the provider's webhooks once.

A webhook is acknowledged before it is applied (Stripe's advice: answer 2xx before any complex
logic): `handle()` verifies it (signature and age, by the provider adapter), records it in
ProviderEvent under a unique (provider, event id) with its object, and queues
`apply_provider_event_task` through the outbox, in one transaction; a replayed event finds its row
and queues nothing. The worker's `apply_received()` applies the row once under its lock (a row
run twice is applied once) and stores the outcome. Events can arrive and be applied in any order:

* `checkout.session.completed` pays the order when the amount and currency are exactly the
  order's `due_minor` in its currency; a payment that cannot be applied (the order was cancelled
  because its checkout expired, or was paid another way, or the amount or currency differ) is
  refunded through the provider, never kept;
* `checkout.session.expired` cancels a card order whose checkout ran out (its held credit goes
  back); after a completed payment it changes nothing;
* `charge.refunded` issues a credit note per refund; arriving before the payment it refunds, it
  waits in the outbox (retried with backoff) until the payment is applied.

With in-process tasks (the embedded default) the row is applied as soon as it is recorded, and
the response says what was done; with a worker it says "received".
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import audit, outbox
from core.actors import Actor
from core.errors import ConflictError, DeliveryError

from .. import checkout
from ..models import (
    Order,
    OrderStatus,
    Payment,
    PaymentCustomer,
    PaymentStatus,
)
from ..models import ProviderEvent as EventRow
from . import (
    NOT_AVAILABLE,
    CardProvider,
    PaymentError,
    ProviderEvent,
    ProviderNotConfigured,
    card_provider,
)

REFUND_TASK = "billing.tasks.refund_unapplied_payment_task"
APPLY_TASK = "billing.tasks.apply_provider_event_task"
ALREADY_APPLIED = "already applied"
ALREADY_RECEIVED = "already received"
RECEIVED = "received"


class NotYet(DeliveryError):
    """The event refers to something not applied yet: the outbox applies it again later."""

    log_level = logging.INFO


def start_card_payment(*, by: Actor, order: Order, success_url: str, cancel_url: str) -> Payment:
    """A hosted checkout for what the order still owes (the HTTP call is outside any transaction)."""
    provider = card_provider()
    if provider is None:
        raise PaymentError(NOT_AVAILABLE)
    if order.status != OrderStatus.AWAITING_PAYMENT:
        raise ConflictError({"order": f"Order {order.pk} is {order.get_status_display().lower()}."})
    customer = PaymentCustomer.objects.filter(
        organization=order.organization, provider=provider.name
    ).first()
    opened = provider.start_checkout(
        order=order,
        success_url=success_url,
        cancel_url=cancel_url,
        customer=customer.external_id if customer else None,
    )
    with transaction.atomic():
        payment = Payment.objects.create(
            order=order,
            provider=provider.name,
            external_id=opened.external_id,
            amount_minor=order.due_minor,
            currency=order.currency,
            url=opened.url,
        )
        audit.record(
            "billing.payment.start",
            actor=by,
            target=payment,
            org_slug=order.organization.slug,
            after={"order": order.pk, "amount_minor": order.due_minor, "provider": provider.name},
        )
    return payment


def handle(provider: CardProvider, body: bytes, headers: dict[str, str]) -> str:
    """Verify, record and queue one webhook once; returns what was done (for the response).

    Two deliveries of one event at the same moment both get this far, and the unique (provider,
    event id) lets only one of them commit (and queue)."""
    event = provider.parse_event(body, headers)  # BadSignature: never recorded
    known = EventRow.objects.filter(provider=provider.name, event_id=event.id)
    seen = known.values_list("applied_at", flat=True)[:1]
    if seen:
        return ALREADY_APPLIED if seen[0] else ALREADY_RECEIVED
    try:
        with transaction.atomic():
            row = EventRow.objects.create(
                provider=provider.name,
                event_id=event.id,
                type=event.type,
                created=event.created,
                payload=event.object,
            )
            outbox.enqueue(APPLY_TASK, row.pk)
    except IntegrityError:
        if known.exists():  # the twin delivery won; this one's row is rolled back
            return ALREADY_RECEIVED
        raise
    if settings.CELERY_TASK_ALWAYS_EAGER:  # applied on commit, in this process: say how
        return EventRow.objects.filter(pk=row.pk).values_list("outcome", flat=True)[0] or RECEIVED
    return RECEIVED


def apply_received(*, event_row_id: int) -> str:
    """Apply a recorded event once (the outbox task calls this; retried while it raises).

    Under the row's lock: a row already applied returns its outcome and changes nothing. NotYet
    (the event refers to something not applied yet) rolls back and is retried by the outbox."""
    with transaction.atomic():
        row = EventRow.objects.select_for_update().get(pk=event_row_id)
        if row.applied_at is not None:
            return row.outcome
        provider = card_provider()
        if provider is None or provider.name != row.provider:
            raise ProviderNotConfigured(f"{row.provider} is not configured; cannot apply {row}.")
        event = ProviderEvent(
            id=row.event_id, type=row.type, created=row.created, object=row.payload
        )
        apply = _HANDLERS.get(event.type)
        outcome = apply(provider, event) if apply else "ignored: not an event the portal uses"
        row.outcome, row.applied_at = outcome[:200], timezone.now()
        row.save(update_fields=["outcome", "applied_at"])
    return outcome


def _payment_for_session(session: dict[str, Any]) -> Payment | None:
    return (
        Payment.objects.select_for_update(of=("self",))
        .select_related("order__organization")
        .filter(external_id=session.get("id", ""))
        .first()
    )


def _session_completed(provider: CardProvider, event: ProviderEvent) -> str:
    session = event.object
    payment = _payment_for_session(session)
    if payment is None:
        return "ignored: not a checkout of this portal"
    if session.get("payment_status") != "paid":
        return "ignored: not paid yet"
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.UNAPPLIED, PaymentStatus.REFUNDED):
        return f"ignored: payment already {payment.status}"
    payment.payment_intent = str(session.get("payment_intent") or "")
    problem = _problem(payment, session)
    if problem:
        return _unapplied(payment, problem)
    try:
        order = checkout.record_payment(
            by=None,
            order=payment.order,
            reference=payment.payment_intent or payment.external_id,
            provider=provider.name,
            amount_minor=payment.amount_minor,
        )
    except ConflictError:  # cancelled meanwhile, or paid another way
        payment.order.refresh_from_db(fields=["status"])
        return _unapplied(payment, f"order {payment.order_id} is {payment.order.status}")
    payment.status = PaymentStatus.SUCCEEDED
    payment.save(update_fields=["status", "payment_intent", "updated_at"])
    if session.get("customer"):  # the card stays on file for the next periods
        PaymentCustomer.objects.bulk_create(  # one upsert: the saved card stays
            [
                PaymentCustomer(
                    organization_id=order.organization_id,
                    provider=provider.name,
                    external_id=str(session["customer"]),
                )
            ],
            update_conflicts=True,
            unique_fields=["organization", "provider"],
            update_fields=["external_id", "updated_at"],
        )
    return f"paid order {order.pk}"


def _problem(payment: Payment, session: dict[str, Any]) -> str:
    if str(session.get("currency") or "").upper() != payment.currency.upper():
        return f"currency {session.get('currency')!r} is not {payment.currency}"
    if session.get("amount_total") != payment.amount_minor:
        return f"amount {session.get('amount_total')} is not {payment.amount_minor}"
    return ""


def _unapplied(payment: Payment, problem: str) -> str:
    """Money that cannot be applied goes back to the card (through the outbox: retried)."""
    payment.status = PaymentStatus.UNAPPLIED
    payment.problem = problem[:200]
    payment.save(update_fields=["status", "problem", "payment_intent", "updated_at"])
    event = audit.record(
        "billing.payment.unapplied",
        actor=None,
        target=payment,
        org_slug=payment.order.organization.slug,
        after={"problem": problem, "amount_minor": payment.amount_minor},
    )
    outbox.enqueue(REFUND_TASK, payment.pk, audit_event=event)
    return f"refunding: {problem}"


def _session_expired(provider: CardProvider, event: ProviderEvent) -> str:
    payment = _payment_for_session(event.object)
    if payment is None:
        return "ignored: not a checkout of this portal"
    if payment.status != PaymentStatus.OPEN:
        return f"ignored: payment already {payment.status}"
    payment.status = PaymentStatus.EXPIRED
    payment.save(update_fields=["status", "updated_at"])
    order = payment.order
    still_open = order.payments.filter(status=PaymentStatus.OPEN).exists()
    if (
        order.status == OrderStatus.AWAITING_PAYMENT
        and not still_open
        and not order.placed_by_billing
    ):
        checkout.cancel_order(by=None, order=order, reason="card checkout expired unpaid")
        return f"cancelled order {order.pk}"
    return "expired"


def _charge_refunded(provider: CardProvider, event: ProviderEvent) -> str:
    charge = event.object
    payment = (
        Payment.objects.select_related("order__invoice")
        .filter(provider=provider.name, payment_intent=charge.get("payment_intent") or "-")
        .first()
    )
    if payment is None or payment.status == PaymentStatus.OPEN:
        raise NotYet("this refund's payment is not applied yet; the event is applied again later")
    if payment.status != PaymentStatus.SUCCEEDED:
        return f"ignored: payment {payment.status}"
    refunds = (charge.get("refunds") or {}).get("data") or []
    notes = [
        checkout.issue_credit_note(
            by=None,
            invoice=payment.order.invoice,
            amount_minor=int(refund["amount"]),
            reason=f"card refund {refund['id']}",
            external_id=f"{provider.name}:{refund['id']}",
        )
        for refund in refunds
        if refund.get("status") in ("succeeded", "pending")
    ]
    return "credit notes " + ", ".join(note.number for note in notes)


_HANDLERS = {
    "checkout.session.completed": _session_completed,
    "checkout.session.async_payment_succeeded": _session_completed,
    "checkout.session.expired": _session_expired,
    "charge.refunded": _charge_refunded,
}


def refund_unapplied(*, payment_id: int) -> None:
    """Give back a payment that could not be applied (the outbox task calls this; retried)."""
    payment = Payment.objects.select_related("order__organization").get(pk=payment_id)
    if payment.status != PaymentStatus.UNAPPLIED:
        return
    provider = card_provider()
    if provider is None or provider.name != payment.provider:
        raise ProviderNotConfigured(
            f"{payment.provider} is not configured; cannot refund {payment}."
        )
    refund_id = provider.refund(
        payment=payment, amount_minor=payment.amount_minor, reason=payment.problem
    )
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.REFUNDED)
        audit.record(
            "billing.payment.refund",
            actor=None,
            target=payment,
            org_slug=payment.order.organization.slug,
            after={"refund": refund_id, "amount_minor": payment.amount_minor},
        )


def refund_order(*, by: Actor, order: Order, amount_minor: int, reason: str) -> Any:
    """An operator refunds a paid card order: the provider refunds, a credit note records it."""
    payment = order.payments.filter(status=PaymentStatus.SUCCEEDED).first()
    if payment is None:
        raise ConflictError({"amount": "This order was not paid by card; refund it by hand."})
    provider = card_provider()
    if provider is None:
        raise PaymentError(NOT_AVAILABLE)
    if not 0 < amount_minor <= payment.amount_minor:
        raise ConflictError({"amount": "Refund at most what was paid by card."})
    refund_id = provider.refund(payment=payment, amount_minor=amount_minor, reason=reason)
    return checkout.issue_credit_note(
        by=by,
        invoice=order.invoice,
        amount_minor=amount_minor,
        reason=reason,
        external_id=f"{provider.name}:{refund_id}",
    )


# --- the card on file: renewals and monthly invoices are charged without the customer ------------

CHARGE_TASK = "billing.tasks.charge_card_on_file_task"


def schedule_card_charge(orders: list[Order]) -> int:
    """Inside the caller's transaction: after commit, charge the card on file for each of these
    orders that has something to pay and whose Organization saved a card (a renewal, a month's
    usage). Returns how many were scheduled."""
    provider = card_provider()
    due = [order for order in orders if order.due_minor > 0]
    if provider is None or not due:
        return 0
    with_card = set(
        PaymentCustomer.objects.filter(
            organization_id__in={order.organization_id for order in due}, provider=provider.name
        ).values_list("organization_id", flat=True)
    )
    scheduled = 0
    for order in due:
        if order.organization_id in with_card:
            outbox.enqueue(CHARGE_TASK, order.pk)
            scheduled += 1
    return scheduled


def charge_card_on_file(*, order_id: int) -> str:
    """Charge an awaiting order to its Organization's saved card (the outbox task). The provider
    call is outside any transaction and idempotent per order; a provider error raises (the outbox
    retries); a declined card leaves the order due: dunning e-mails, the customer pays by card on
    the billing page (a new checkout) or by transfer."""
    provider = card_provider()
    order = Order.objects.select_related("organization").get(pk=order_id)
    customer = (
        PaymentCustomer.objects.filter(
            organization=order.organization, provider=provider.name
        ).first()
        if provider
        else None
    )
    if provider is None or customer is None or order.status != OrderStatus.AWAITING_PAYMENT:
        return "nothing to charge"
    charged = provider.charge_saved_card(order=order, customer=customer.external_id)
    external_id = charged.intent or f"off-session-{order.pk}"
    with transaction.atomic():
        if Payment.objects.filter(external_id=external_id).exists():
            return "already charged"
        payment = Payment.objects.create(
            order=order,
            provider=provider.name,
            external_id=external_id,
            payment_intent=charged.intent,
            amount_minor=order.due_minor,
            currency=order.currency,
            status=PaymentStatus.OPEN if charged.succeeded else PaymentStatus.EXPIRED,
            problem=charged.problem[:200],
        )
        audit.record(
            "billing.payment.card_on_file",
            actor=None,
            target=payment,
            org_slug=order.organization.slug,
            after={
                "order": order.pk,
                "amount_minor": order.due_minor,
                "succeeded": charged.succeeded,
                "problem": charged.problem,
            },
        )
        if not charged.succeeded:
            return f"declined: {charged.problem}"
        try:
            checkout.record_payment(
                by=None,
                order=order,
                reference=charged.intent,
                provider=provider.name,
                amount_minor=payment.amount_minor,
            )
        except ConflictError:  # paid another way meanwhile: the money goes back
            order.refresh_from_db(fields=["status"])
            return _unapplied(payment, f"order {order.pk} is {order.status}")
        payment.status = PaymentStatus.SUCCEEDED
        payment.save(update_fields=["status", "updated_at"])
    return f"paid order {order.pk}"
