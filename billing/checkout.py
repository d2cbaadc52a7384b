"""Confirming a quote: exactly the money shown, once; then payment, fulfilment or cancellation.

`confirm_quote` locks the quote, prices the same request again and refuses (QuoteChanged, with a
fresh quote) when anything shown has changed or the quote expired. Otherwise, in one transaction:
the new Organization (for the sign-up wizard) and its voucher, the order, the credit applied
(ledger debit `order:<id>`), and either fulfilment (nothing left to pay) or an invoice for the
rest. The plan changes only on fulfilment: when the order is paid or covered by credit.

Ledger references: `order:<id>` (credit spent on an order: the held part at placement, the paid
part at payment), `payment:<invoice>` (money received for an invoice), `order-cancel:<id>` (held
credit given back when an order is cancelled).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from core import audit, events, outbox
from core.actors import Actor, person
from core.errors import ConflictError
from orgs import services as org_services
from orgs.models import Organization, OrgState, Sovereign

from . import invoices, ledger, quotes, vouchers
from .models import (
    CreditNote,
    DunningNotice,
    Invoice,
    InvoiceStatus,
    Order,
    OrderStatus,
    Quote,
    QuoteKind,
    QuoteStatus,
    Subscription,
    SubscriptionStatus,
)
from .money import format_money

PRICES_CHANGED = "Prices changed, review the new quote."
QUOTE_EXPIRED = "This quote has expired, review the new quote."
FINAL_STEP = "final"


class QuoteChanged(ConflictError):
    """The quote cannot be charged as shown; `fresh` is the new quote to review."""

    def __init__(self, message: str, fresh: Quote) -> None:
        super().__init__({"quote": message})
        self.fresh = fresh


class _Stale(Exception):
    def __init__(self, fresh: Quote, message: str) -> None:
        self.fresh = fresh
        self.message = message


@dataclass
class Confirmation:
    organization: Organization
    order: Order | None  # None for a change scheduled at the end of the period
    message: str


def confirm_quote(*, by: Actor, quote_id: int) -> Confirmation:
    """Charge exactly quote `quote_id`, or raise QuoteChanged with the quote to review instead."""
    try:
        with transaction.atomic():
            return _confirm_locked(by=by, quote_id=quote_id)
    except _Stale as stale:
        with transaction.atomic():
            Quote.objects.filter(pk=quote_id, status=QuoteStatus.OPEN).update(
                status=QuoteStatus.SUPERSEDED
            )
            fresh = quotes.save(stale.fresh)
        raise QuoteChanged(stale.message, fresh) from None


def _confirm_locked(*, by: Actor, quote_id: int) -> Confirmation:
    quote = Quote.objects.select_for_update().get(pk=quote_id)
    if quote.status == QuoteStatus.CONFIRMED:  # a second click: the first one's result, no charge
        order = Order.objects.filter(quote=quote).select_related("organization").first()
        org = order.organization if order else quote.organization
        assert org is not None
        return Confirmation(org, order, "This quote was already confirmed.")
    sub = None
    if quote.organization_id:  # the Organization as it is under its lock
        quote.organization = Organization.objects.select_for_update().get(pk=quote.organization_id)
        sub = quotes.live_subscription(quote.organization)
    fresh = quotes.refresh(quote, sub=sub)
    if quote.status != QuoteStatus.OPEN or quote.expires_at <= timezone.now():
        raise _Stale(fresh, QUOTE_EXPIRED)
    if fresh.kind != quote.kind or fresh.money != quote.money:
        raise _Stale(fresh, PRICES_CHANGED)
    quote.status = QuoteStatus.CONFIRMED
    quote.save(update_fields=["status"])
    if quote.kind == QuoteKind.NEW:
        return _confirm_new(quote, by=by)
    org = quote.organization
    assert org is not None
    if quote.kind == QuoteKind.DOWNGRADE:
        assert sub is not None
        return _schedule_downgrade(quote, org=org, by=by, sub=sub)
    order = place(quote, org=org, by=by, sub=sub)
    return Confirmation(org, order, order_message(order))


def _confirm_new(quote: Quote, *, by: Actor) -> Confirmation:
    inputs = quote.inputs
    region = inputs.get("region") or ""
    org = org_services.create_organization(
        by=by,
        slug=inputs["slug"],
        display_name=inputs["display_name"],
        environments=[{"env_type": "prod", "regions": [region]}] if region else [],
    )
    quote.organization = org
    quote.save(update_fields=["organization"])
    if inputs.get("voucher_code"):
        vouchers.redeem_voucher(code=inputs["voucher_code"], org=org, by=by)
    order = place(quote, org=org, by=by, sub=None)
    return Confirmation(org, order, order_message(order))


def _schedule_downgrade(
    quote: Quote, *, org: Organization, by: Actor, sub: Subscription
) -> Confirmation:
    before = {"pending_plan_code": sub.pending_plan_code}
    sub.pending_plan_code = quote.plan_code
    sub.save(update_fields=["pending_plan_code"])
    audit.record(
        "billing.subscription.downgrade",
        actor=by,
        target=sub,
        org_slug=org.slug,
        before=before,
        after={"pending_plan_code": quote.plan_code, "from": sub.period_end.isoformat()},
    )
    subscription_changed(sub, "downgrade-scheduled")
    when = sub.period_end.strftime("%Y-%m-%d")
    return Confirmation(
        org, None, f"{org.display_name} moves to plan {quote.plan_code.upper()} on {when}."
    )


def place(quote: Quote, *, org: Organization, by: Actor, sub: Subscription | None) -> Order:
    """The order for a confirmed quote (inside the caller's transaction, org row locked; `sub`
    is its live subscription, if any)."""
    order = Order.objects.create(
        organization=org,
        kind=quote.kind,
        quote=quote,
        subscription=sub,
        plan_code=quote.plan_code,
        addons=quote.inputs.get("addons") or {},
        lines=quote.lines,
        currency=quote.currency,
        subtotal_minor=quote.subtotal_minor,
        tax_minor=quote.tax_minor,
        total_minor=quote.total_minor,
        credit_applied_minor=quote.credit_applied_minor,
        due_minor=quote.due_now_minor,
        period_start=quote.period_start,
        period_end=quote.period_end,
        status=OrderStatus.AWAITING_PAYMENT,
        voucher_code=quote.inputs.get("voucher_code", ""),
        placed_by=person(by),
    )
    if order.credit_applied_minor:
        ledger.append(
            org=org,
            amount_minor=-order.credit_applied_minor,
            reason="order",
            reference=f"order:{order.pk}",
            actor=by,
            in_currency=order.currency,
        )
    after = {
        "kind": order.kind,
        "plan_code": order.plan_code,
        "total_minor": order.total_minor,
        "credit_applied_minor": order.credit_applied_minor,
        "due_minor": order.due_minor,
        "quote": quote.pk,
    }
    audit.record("billing.order.placed", actor=by, target=order, org_slug=org.slug, after=after)
    events.emit(
        "order.placed",
        {
            "order": order.pk,
            "organization": org.slug,
            "plan": order.plan_code,
            "currency": order.currency,
            "total_minor": order.total_minor,
            "due_minor": order.due_minor,
            "status": "paid" if not order.due_minor else order.status,
        },
    )
    if order.due_minor == 0:
        _mark_paid(order)
        fulfil(order, by=by)
    else:
        invoices.for_order(order, by=by, tax_rate_bp=quote.tax_rate_bp)
    return order


def _mark_paid(order: Order) -> None:
    """Paid now; saved by `fulfil`, which runs next and writes the order once."""
    order.status = OrderStatus.PAID
    order.paid_at = timezone.now()


def _recurring(order: Order) -> int | None:
    """The monthly price before tax the order's quote agreed on, if it has one."""
    quote = order.quote if order.quote_id else None
    return sum(line["amount_minor"] for line in quote.recurring_lines) if quote else None


def subscription_changed(sub: Subscription, change: str) -> None:
    """`catalyst.subscription.changed` for the platform (inside the caller's transaction)."""
    events.emit(
        "subscription.changed",
        {
            "subscription": sub.pk,
            "organization": sub.organization.slug,
            "change": change,
            "status": sub.status,
            "plan": sub.plan_code,
            "pending_plan": sub.pending_plan_code,
            "cancel_at_period_end": sub.cancel_at_period_end,
            "recurring_minor": sub.recurring_minor,
            "currency": sub.currency,
            "period_start": sub.period_start,
            "period_end": sub.period_end,
        },
    )


def fulfil(order: Order, *, by: Actor) -> None:
    """A paid order takes effect: the subscription starts, renews or changes plan (a month's
    usage order only needs to be paid)."""
    org = order.organization
    if order.kind == QuoteKind.USAGE:
        order.save(update_fields=["status", "paid_at"])
        _resume_if_settled(org)
        return
    now = timezone.now()
    plan_unit = next((line["unit_minor"] for line in order.lines if line["kind"] == "plan"), None)
    sub = order.subscription if order.subscription_id else None
    if sub is not None and sub.status != SubscriptionStatus.ACTIVE:
        sub = quotes.live_subscription(org)
    if order.kind in (QuoteKind.NEW, QuoteKind.PURCHASE) or sub is None:
        sub = Subscription.objects.create(
            organization=org,
            plan_code=order.plan_code,
            plan_unit_minor=plan_unit or 0,
            recurring_minor=_recurring(order) or plan_unit or 0,
            addons=order.addons,
            currency=order.currency,
            period_start=now,
            period_end=quotes.add_month(now),
        )
        order.period_start, order.period_end = sub.period_start, sub.period_end
    elif order.kind == QuoteKind.UPGRADE:
        assert order.quote is not None
        new_unit = next(
            line["unit_minor"] for line in order.quote.recurring_lines if line["kind"] == "plan"
        )
        sub.plan_code, sub.plan_unit_minor, sub.pending_plan_code = order.plan_code, new_unit, ""
        sub.recurring_minor = _recurring(order) or new_unit
        sub.save(
            update_fields=["plan_code", "plan_unit_minor", "pending_plan_code", "recurring_minor"]
        )
    order.subscription = sub
    order.save(update_fields=["status", "paid_at", "subscription", "period_start", "period_end"])
    if org.plan_code != sub.plan_code:
        set_org_plan(org, plan_code=sub.plan_code, by=by)
    audit.record(
        "billing.subscription.start"
        if order.kind != QuoteKind.UPGRADE
        else "billing.subscription.upgrade",
        actor=by,
        target=sub,
        org_slug=org.slug,
        after={
            "plan_code": sub.plan_code,
            "order": order.pk,
            "period_end": sub.period_end.isoformat(),
        },
    )
    if order.kind != QuoteKind.RENEWAL:  # a renewal announced itself when it was ordered
        subscription_changed(sub, "upgrade" if order.kind == QuoteKind.UPGRADE else "start")
    _resume_if_settled(org)


def set_org_plan(org: Organization, *, plan_code: str, by: Actor) -> None:
    """The plan is part of the Organization CR: record it and re-deliver the Organization."""
    before = {"plan_code": org.plan_code}
    Organization.objects.filter(pk=org.pk).update(plan_code=plan_code, updated_at=timezone.now())
    org.plan_code = plan_code
    event = audit.record(
        "organization.update",
        actor=by,
        target=org,
        org_slug=org.slug,
        before=before,
        after={"plan_code": plan_code},
    )
    outbox.enqueue(org_services.SYNC_TASK, org.pk, actor=by, audit_event=event)


def _resume_if_settled(org: Organization) -> None:
    """An Organization suspended for an unpaid invoice resumes once no such invoice is left
    (`org` was read under its row lock in this transaction)."""
    if org.state != OrgState.SUSPENDED or org.suspended_reason != "unpaid":
        return
    still_due = DunningNotice.objects.filter(
        step=FINAL_STEP, invoice__organization=org, invoice__status=InvoiceStatus.ISSUED
    )
    if not still_due.exists():
        org_services.resume_organization(by=None, org=org)


def next_number(model: type[Model], prefix: str) -> str:
    """`<prefix>-<year>-000001`: gap-free per year; the Sovereign row is the numbering lock."""
    return next_numbers(model, prefix, 1)[0]


def next_numbers(model: type[Model], prefix: str, count: int) -> list[str]:
    """The next `count` numbers in order, under one lock (held until the caller's transaction
    ends, so the numbers are used by it or by nobody: no gap)."""
    year = timezone.now().year
    head = f"{prefix}-{year}-"
    Sovereign.objects.select_for_update().order_by("pk").first()
    last = (
        model._default_manager.filter(number__startswith=head)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    first = int(str(last).rsplit("-", 1)[1]) + 1 if last else 1
    return [f"{head}{sequence:06d}" for sequence in range(first, first + count)]


def record_payment(
    *,
    by: Actor,
    order: Order,
    reference: str,
    provider: str = "manual",
    amount_minor: int | None = None,
) -> Order:
    """Money received for an awaiting order's invoice (bank transfer recorded by an operator, or a
    card payment reported by a provider): the invoice is paid and the order takes effect."""
    reference = (reference or "").strip()
    if not reference:
        raise ValidationError(
            {"reference": "Enter the payment reference (bank transfer id, receipt …)."}
        )
    with transaction.atomic():
        locked = (
            Order.objects.select_for_update(of=("self",))
            .select_related("invoice", "quote")
            .get(pk=order.pk)
        )
        if locked.status != OrderStatus.AWAITING_PAYMENT:
            raise ConflictError(
                {"reference": f"Order {locked.pk} is {locked.get_status_display().lower()}."}
            )
        if amount_minor is not None and amount_minor != locked.due_minor:
            raise ConflictError({"reference": "The amount paid is not the amount due."})
        org = Organization.objects.select_for_update().get(pk=locked.organization_id)
        locked.organization = org
        invoice = locked.invoice
        ledger.append_pair(  # the money received, spent at once on the order
            org=org,
            amount_minor=locked.due_minor,
            received=("payment", f"payment:{invoice.number}", f"{provider}: {reference}"),
            spent=("order", f"order:{locked.pk}"),
            actor=by,
            in_currency=locked.currency,
        )
        now = timezone.now()
        Invoice.objects.filter(pk=invoice.pk).update(
            status=InvoiceStatus.PAID, paid_at=now, payment_reference=reference
        )
        _mark_paid(locked)
        audit.record(
            "billing.invoice.paid",
            actor=by,
            target=invoice,
            org_slug=org.slug,
            after={"reference": reference, "provider": provider, "total_minor": locked.due_minor},
        )
        events.emit(
            "invoice.paid",
            {
                "invoice": invoice.number,
                "order": locked.pk,
                "organization": org.slug,
                "currency": locked.currency,
                "total_minor": locked.due_minor,
            },
        )
        fulfil(locked, by=by)
    return locked


def cancel_order(*, by: Actor, order: Order, reason: str) -> Order:
    """An unpaid order ends: its invoice is void and the credit it held goes back."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.AWAITING_PAYMENT:
            return locked
        org = Organization.objects.select_for_update().get(pk=locked.organization_id)
        locked.organization = org
        if locked.credit_applied_minor:
            ledger.append(
                org=org,
                amount_minor=locked.credit_applied_minor,
                reason="order-cancel",
                reference=f"order-cancel:{locked.pk}",
                note=reason[:200],
                actor=by,
                in_currency=locked.currency,
            )
        Invoice.objects.filter(order=locked, status=InvoiceStatus.ISSUED).update(
            status=InvoiceStatus.VOID
        )
        locked.status = OrderStatus.CANCELLED
        locked.cancelled_at = timezone.now()
        locked.save(update_fields=["status", "cancelled_at"])
        audit.record(
            "billing.order.cancel",
            actor=by,
            target=locked,
            org_slug=org.slug,
            after={"reason": reason, "credit_returned_minor": locked.credit_applied_minor},
        )
        if locked.kind == QuoteKind.RENEWAL and locked.subscription is not None:
            _end_unpaid_subscription(locked, org, by=by)
        _resume_if_settled(org)
    return locked


def _end_unpaid_subscription(order: Order, org: Organization, *, by: Actor) -> None:
    """Cancelling a renewal declines the period it would pay for: the subscription ends now
    (the service is not given away), and the Organization has no plan until it orders one."""
    if order.subscription_id is None:
        return
    sub = (
        Subscription.objects.select_related("organization")
        .filter(pk=order.subscription_id, status=SubscriptionStatus.ACTIVE)
        .first()
    )
    if sub is None:
        return
    sub.status, sub.ended_at = SubscriptionStatus.ENDED, timezone.now()
    sub.save(update_fields=["status", "ended_at"])
    audit.record(
        "billing.subscription.end",
        actor=by,
        target=sub,
        org_slug=org.slug,
        after={"reason": "renewal cancelled unpaid", "order": order.pk},
    )
    subscription_changed(sub, "end")
    set_org_plan(org, plan_code="", by=by)


def issue_credit_note(
    *, by: Actor, invoice: Invoice, amount_minor: int, reason: str, external_id: str | None = None
) -> CreditNote:
    """Money given back on a paid invoice (a card refund); once per provider refund id."""
    with transaction.atomic():
        if external_id and (note := CreditNote.objects.filter(external_id=external_id).first()):
            return note
        refunded = sum(invoice.credit_notes.values_list("amount_minor", flat=True))
        if not 0 < amount_minor <= invoice.total_minor - refunded:
            raise ValidationError(
                {"amount": "Refund at most what was paid on this invoice and not yet refunded."}
            )
        note = CreditNote.objects.create(
            number=next_number(CreditNote, "CN"),
            invoice=invoice,
            organization=invoice.organization,
            amount_minor=amount_minor,
            currency=invoice.currency,
            reason=reason[:200],
            external_id=external_id,
            created_by=person(by),
        )
        audit.record(
            "billing.credit_note.issue",
            actor=by,
            target=note,
            org_slug=invoice.organization.slug,
            after={"invoice": invoice.number, "amount_minor": amount_minor, "reason": reason},
        )
    return note


def order_message(order: Order) -> str:
    total = format_money(order.total_minor, order.currency)
    if order.status == OrderStatus.PAID:
        return (
            f"{order.organization.display_name} is on plan {order.plan_code.upper()}; "
            f"{total} paid from credit."
        )
    due = format_money(order.due_minor, order.currency)
    return f"Order placed: {due} is awaiting payment (invoice {order.invoice.number})."
