"""Checkout: quote first, then (one transaction) Organization, voucher, order, debit, subscription.

A pricing failure raises before anything is written, so it never uses up a voucher. If the
voucher or anything after it fails, the whole transaction (including the new Organization) rolls
back. Credit that covers the total pays the order at once; otherwise the order waits for payment
with an invoice that an operator marks paid.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import audit, events, outbox
from core.errors import ConflictError
from orgs import services as org_services
from orgs.models import Organization, Sovereign

from . import ledger, pricing, vouchers
from .models import Invoice, Order, OrderStatus, Subscription

PERIOD = timedelta(days=30)


def start_organization(
    *,
    by: Any,
    slug: str,
    display_name: str,
    plan_code: str,
    region: str,
    voucher_code: str = "",
    addons: dict[str, int] | None = None,
) -> Order:
    """The sign-up wizard's last step: a new Organization on `plan_code`, paid by credit if possible."""
    quote = pricing.quote(plan_code=plan_code, addons=addons)
    if voucher_code:
        found = vouchers.preview(voucher_code)
        if found.status == "not_valid":
            raise vouchers.VoucherNotValid()
        if found.status == "ended":
            raise vouchers.VoucherEnded()
    with transaction.atomic():
        org = org_services.create_organization(
            by=by,
            slug=slug,
            display_name=display_name,
            plan_code=plan_code,
            environments=[{"env_type": "prod", "regions": [region]}] if region else [],
        )
        if voucher_code:
            vouchers.redeem_voucher(code=voucher_code, org=org, by=by)
        return _place(by=by, org=org, quote=quote, voucher_code=vouchers.normalize(voucher_code))


def place_order(
    *, by: Any, org: Organization, plan_code: str, addons: dict[str, int] | None = None
) -> Order:
    """An existing Organization orders (or changes to) a plan."""
    quote = pricing.quote(plan_code=plan_code, addons=addons)
    with transaction.atomic():
        locked = Organization.objects.select_for_update().get(pk=org.pk)
        if Order.objects.filter(organization=locked, status=OrderStatus.AWAITING_PAYMENT).exists():
            raise ConflictError(
                {"plan": "An order is already awaiting payment; pay or cancel it first."}
            )
        return _place(by=by, org=locked, quote=quote, voucher_code="")


def _place(*, by: Any, org: Organization, quote: pricing.Quote, voucher_code: str) -> Order:
    Organization.objects.select_for_update().filter(pk=org.pk).first()
    balance = ledger.balance(org)
    covered = balance >= quote.total_minor
    order = Order.objects.create(
        organization=org,
        plan_code=quote.plan_code,
        lines=[line.__dict__ for line in quote.lines],
        currency=quote.currency,
        subtotal_minor=quote.subtotal_minor,
        tax_minor=quote.tax_minor,
        total_minor=quote.total_minor,
        status=OrderStatus.PAID if covered else OrderStatus.AWAITING_PAYMENT,
        voucher_code=voucher_code,
        placed_by=by,
        paid_at=timezone.now() if covered else None,
    )
    audit.record(
        "billing.order.placed",
        actor=by,
        target=order,
        org_slug=org.slug,
        after={
            "plan_code": quote.plan_code,
            "total_minor": quote.total_minor,
            "status": order.status,
        },
    )
    events.emit(
        "order.placed",
        {
            "order": order.pk,
            "organization": org.slug,
            "plan": quote.plan_code,
            "currency": quote.currency,
            "total_minor": quote.total_minor,
            "status": order.status,
        },
    )
    if covered:
        _fulfil(order, by=by, paid_by_credit=True)
    else:
        invoice = Invoice.objects.create(
            number=_next_invoice_number(),
            order=order,
            organization=org,
            currency=quote.currency,
            total_minor=quote.total_minor,
        )
        audit.record(
            "billing.invoice.issued",
            actor=by,
            target=invoice,
            org_slug=org.slug,
            after={"order": order.pk, "total_minor": invoice.total_minor},
        )
    return order


def _fulfil(order: Order, *, by: Any, paid_by_credit: bool) -> None:
    org = order.organization
    if order.total_minor:
        ledger.append(
            org=org,
            amount_minor=-order.total_minor,
            reason="order",
            reference=f"order:{order.pk}",
            actor=by,
        )
    now = timezone.now()
    Subscription.objects.filter(organization=org, status="active").update(
        status="ended", period_end=now
    )
    Subscription.objects.create(
        organization=org,
        plan_code=order.plan_code,
        order=order,
        period_start=now,
        period_end=now + PERIOD,
    )
    if org.plan_code != order.plan_code:
        _change_plan(org, plan_code=order.plan_code, by=by)
    audit.record(
        "billing.subscription.start",
        actor=by,
        target=order,
        org_slug=org.slug,
        after={"plan_code": order.plan_code, "paid_by_credit": paid_by_credit},
    )


def _change_plan(org: Organization, *, plan_code: str, by: Any) -> None:
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


def _next_invoice_number() -> str:
    year = timezone.now().year
    prefix = f"INV-{year}-"
    # the Sovereign row is the numbering lock: gap-free and unique even for the year's first one
    Sovereign.objects.select_for_update().order_by("pk").first()
    last = (
        Invoice.objects.select_for_update()
        .filter(number__startswith=prefix)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    sequence = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{sequence:06d}"


def record_payment(*, by: Any, order: Order, reference: str) -> Order:
    """An operator records a manual payment of an awaiting order's invoice."""
    reference = (reference or "").strip()
    if not reference:
        raise ValidationError(
            {"reference": "Enter the payment reference (bank transfer id, receipt …)."}
        )
    with transaction.atomic():
        locked = Order.objects.select_for_update().select_related("organization").get(pk=order.pk)
        if locked.status != OrderStatus.AWAITING_PAYMENT:
            raise ConflictError(
                {"reference": f"Order {locked.pk} is {locked.get_status_display().lower()}."}
            )
        now = timezone.now()
        ledger.append(
            org=locked.organization,
            amount_minor=locked.total_minor,
            reason="payment",
            reference=f"payment:{locked.invoice.number}",
            note=reference,
            actor=by,
        )
        Invoice.objects.filter(pk=locked.invoice.pk).update(
            status="paid", paid_at=now, payment_reference=reference
        )
        locked.status = OrderStatus.PAID
        locked.paid_at = now
        locked.save(update_fields=["status", "paid_at"])
        audit.record(
            "billing.invoice.paid",
            actor=by,
            target=locked.invoice,
            org_slug=locked.organization.slug,
            after={"reference": reference, "total_minor": locked.total_minor},
        )
        events.emit(
            "invoice.paid",
            {
                "invoice": locked.invoice.number,
                "order": locked.pk,
                "organization": locked.organization.slug,
                "currency": locked.currency,
                "total_minor": locked.total_minor,
            },
        )
        _fulfil(locked, by=by, paid_by_credit=False)
    return locked
