"""Invoices as documents: issue (number, credit, the order that is paid), void with a credit note,
HTML and PDF, the e-mail sent on issue.

Two ways an invoice comes to be:

* an **order** not covered by credit (a purchase, upgrade or renewal: plan, add-ons, Application
  extras, proration) is invoiced when it is placed (`for_order`, issued at once);
* the **monthly billing run** (`billing.runs`) writes a **draft** per Organization and month of
  rated usage; `issue` numbers it, applies credit from the ledger and creates the order that is
  paid (bank transfer recorded by an operator, card, dunning: the same machinery as any order).

Tax is computed per line at the Sovereign's rate, rounded half up (`billing.money.line_tax`);
the invoice's tax is the sum of its lines' taxes. Numbers are `INV-<year>-000001`, gap-free per
year, assigned at issue under the Sovereign-row lock (`checkout.next_number`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.utils import timezone

from core import audit, events, outbox
from core.actors import Actor, person
from core.errors import ConflictError
from orgs import members
from orgs.models import Organization, Sovereign

from . import ledger
from .models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LedgerEntry,
    Order,
    OrderStatus,
    QuoteKind,
)
from .money import format_money, line_tax

EMAIL_TASK = "billing.tasks.send_invoice_email_task"


def _number(prefix: str) -> str:
    from .checkout import next_number

    return next_number(Invoice if prefix == "INV" else CreditNote, prefix)


def for_order(order: Order, *, by: Actor, tax_rate_bp: int) -> Invoice:
    """The invoice of an order placed with something left to pay (issued now, numbered)."""
    invoice = Invoice.objects.create(
        number=_number("INV"),
        order=order,
        organization=order.organization,
        currency=order.currency,
        tax_rate_bp=tax_rate_bp,
        subtotal_minor=order.subtotal_minor,
        tax_minor=order.tax_minor,
        credit_applied_minor=order.credit_applied_minor,
        total_minor=order.due_minor,
        status=InvoiceStatus.ISSUED,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            kind=line["kind"],
            code=line["code"],
            description=line["name"],
            quantity=Decimal(line["quantity"]),
            unit=line.get("unit", ""),
            unit_price=format_money(line["unit_minor"], order.currency),
            amount_minor=line["amount_minor"],
            tax_minor=line_tax(line["amount_minor"], tax_rate_bp),
        )
        for position, line in enumerate(order.lines, start=1)
    )
    _issued(invoice, by=by, source={"order": order.pk, "kind": order.kind})
    if order.kind == QuoteKind.RENEWAL:  # nobody is at the keyboard: the card on file pays
        from .payments.events import schedule_card_charge

        schedule_card_charge([order])
    return invoice


def _issued(invoice: Invoice, *, by: Actor, source: dict[str, Any]) -> None:
    """Audit, the platform event and the e-mail of an invoice that was just issued."""
    org = invoice.organization
    after = {
        "number": invoice.number,
        "subtotal_minor": invoice.subtotal_minor,
        "tax_minor": invoice.tax_minor,
        "credit_applied_minor": invoice.credit_applied_minor,
        "total_minor": invoice.total_minor,
        **source,
    }
    event = audit.record(
        "billing.invoice.issued", actor=by, target=invoice, org_slug=org.slug, after=after
    )
    events.emit(
        "invoice.issued",
        {
            "invoice": invoice.number,
            "organization": org.slug,
            "period": invoice.period,
            "currency": invoice.currency,
            "subtotal_minor": invoice.subtotal_minor,
            "tax_minor": invoice.tax_minor,
            "credit_applied_minor": invoice.credit_applied_minor,
            "total_minor": invoice.total_minor,
        },
    )
    outbox.enqueue(EMAIL_TASK, invoice.pk, audit_event=event)


def issue(*, by: Actor, invoice_id: int) -> Invoice:
    """A draft becomes an issued invoice: its number, the credit applied from the ledger, and
    the order that is paid. Issuing an issued invoice changes nothing."""
    issue_many(by=by, invoice_ids=[invoice_id])
    return Invoice.objects.select_related("organization", "order").get(pk=invoice_id)


def issue_many(*, by: Actor, invoice_ids: list[int]) -> int:
    """Issue the drafts among `invoice_ids` in one transaction (the billing run issues in chunks):
    numbers in id order under one lock, balances read in one query, orders and ledger entries
    written in bulk. Returns how many were issued."""
    from .checkout import next_numbers

    with transaction.atomic():
        drafts = list(
            Invoice.objects.select_for_update()
            .filter(pk__in=invoice_ids, status=InvoiceStatus.DRAFT)
            .order_by("pk")
        )
        if not drafts:
            return 0
        org_ids = sorted({d.organization_id for d in drafts})
        orgs = {
            org.pk: org
            for org in Organization.objects.select_for_update()
            .filter(pk__in=org_ids)
            .order_by("pk")
        }
        balances: dict[int, int] = dict(
            LedgerEntry.objects.filter(organization_id__in=org_ids)
            .values("organization_id")
            .annotate(total=Sum("amount_minor"))
            .values_list("organization_id", "total")
        )
        lines: dict[int, list[InvoiceLine]] = {}
        for line in InvoiceLine.objects.filter(invoice__in=drafts).order_by("invoice", "position"):
            lines.setdefault(line.invoice_id, []).append(line)
        numbers = next_numbers(Invoice, "INV", len(drafts))
        now = timezone.now()
        orders = []
        for draft in drafts:
            org = orgs[draft.organization_id]
            gross = draft.gross_minor
            applied = min(max(balances.get(org.pk, 0), 0), max(gross, 0))
            balances[org.pk] = balances.get(org.pk, 0) - applied  # two drafts of one org
            draft.organization = org
            draft.credit_applied_minor, draft.total_minor = applied, gross - applied
            orders.append(
                Order(
                    organization=org,
                    kind=QuoteKind.USAGE,
                    plan_code=org.plan_code,
                    lines=[
                        {
                            "code": line.code,
                            "name": line.description,
                            "kind": line.kind,
                            "quantity": str(line.quantity.normalize()),
                            "unit_minor": line.amount_minor,
                            "amount_minor": line.amount_minor,
                        }
                        for line in lines.get(draft.pk, [])
                    ],
                    currency=draft.currency,
                    subtotal_minor=draft.subtotal_minor,
                    tax_minor=draft.tax_minor,
                    total_minor=gross,
                    credit_applied_minor=applied,
                    due_minor=gross - applied,
                    status=OrderStatus.AWAITING_PAYMENT if gross - applied else OrderStatus.PAID,
                    placed_at=now,
                    paid_at=None if gross - applied else now,
                )
            )
        Order.objects.bulk_create(orders)
        LedgerEntry.objects.bulk_create(
            LedgerEntry(
                organization_id=order.organization_id,
                amount_minor=-order.credit_applied_minor,
                currency=order.currency,
                reason="order",
                reference=f"order:{order.pk}",
                actor=person(by),
                created_at=now,
            )
            for order in orders
            if order.credit_applied_minor
        )
        for draft, order, number in zip(drafts, orders, numbers, strict=True):
            draft.number, draft.order, draft.issued_at = number, order, now
            draft.status = InvoiceStatus.ISSUED if draft.total_minor else InvoiceStatus.PAID
            draft.paid_at = None if draft.total_minor else now
        Invoice.objects.bulk_update(
            drafts,
            [
                "number",
                "order",
                "issued_at",
                "status",
                "paid_at",
                "credit_applied_minor",
                "total_minor",
            ],
        )
        for draft in drafts:
            _issued(draft, by=by, source={"period": draft.period, "order": draft.order_id})
            if draft.status == InvoiceStatus.PAID:
                paid_event(draft)
        from .payments.events import schedule_card_charge

        schedule_card_charge(orders)
    return len(drafts)


def paid_event(invoice: Invoice) -> None:
    events.emit(
        "invoice.paid",
        {
            "invoice": invoice.number,
            "order": invoice.order_id,
            "organization": invoice.organization.slug,
            "currency": invoice.currency,
            "total_minor": invoice.total_minor,
        },
    )


def void(*, by: Actor, invoice: Invoice, reason: str) -> CreditNote | None:
    """Void an invoice. An issued one gets a credit note for what it charged (less refunds
    already noted); an unpaid one's order is cancelled (its credit comes back), a paid one's
    money comes back to the Organization as credit (`void:<number>`). A draft is just void."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            {"reason": "Say why the invoice is void (it goes on the credit note)."}
        )
    from . import checkout

    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status == InvoiceStatus.VOID:
            raise ConflictError({"reason": f"Invoice {locked} is already void."})
        org = Organization.objects.select_for_update().get(pk=locked.organization_id)
        locked.organization = org
        now = timezone.now()
        note = None
        before = {"status": locked.status}
        if locked.status == InvoiceStatus.DRAFT:
            locked.status, locked.voided_at, locked.void_reason = InvoiceStatus.VOID, now, reason
            locked.save(update_fields=["status", "voided_at", "void_reason"])
        else:
            refunded = sum(locked.credit_notes.values_list("amount_minor", flat=True))
            if locked.status == InvoiceStatus.ISSUED and locked.order is not None:
                checkout.cancel_order(by=by, order=locked.order, reason=f"invoice void: {reason}")
                back = 0  # cancelling gave the held credit back
            else:
                back = locked.gross_minor - refunded
            if back > 0:
                ledger.append(
                    org=org,
                    amount_minor=back,
                    reason="invoice-void",
                    reference=f"void:{locked.number}",
                    note=reason[:200],
                    actor=by,
                    in_currency=locked.currency,
                )
            if locked.gross_minor - refunded > 0:
                note = CreditNote.objects.create(
                    number=_number("CN"),
                    invoice=locked,
                    organization=org,
                    amount_minor=locked.gross_minor - refunded,
                    currency=locked.currency,
                    reason=reason[:200],
                    kind="void",
                    created_by=person(by),
                )
            Invoice.objects.filter(pk=locked.pk).update(
                status=InvoiceStatus.VOID, voided_at=now, void_reason=reason[:200]
            )
        audit.record(
            "billing.invoice.void",
            actor=by,
            target=locked,
            org_slug=org.slug,
            before=before,
            after={"reason": reason, "credit_note": note.number if note else None},
        )
    return note


def document_context(invoice: Invoice) -> dict[str, Any]:
    sovereign = Sovereign.objects.order_by("pk").first()
    return {
        "invoice": invoice,
        "lines": list(invoice.lines.all()),
        "org": invoice.organization,
        "sovereign": sovereign,
        "credit_notes": list(invoice.credit_notes.all()),
    }


def render_html(invoice: Invoice, *, standalone: bool = True) -> str:
    context = document_context(invoice) | {"standalone": standalone}
    return render_to_string("billing/invoice_document.html", context)


def render_pdf(invoice: Invoice) -> bytes:
    """The printable document as PDF (WeasyPrint renders the same HTML)."""
    from django.contrib.staticfiles import finders
    from weasyprint import CSS, HTML

    css_path = finders.find("billing/invoice.css")
    sheets = [CSS(filename=str(css_path))] if css_path else []
    return bytes(HTML(string=render_html(invoice)).write_pdf(stylesheets=sheets))


def filename(invoice: Invoice) -> str:
    return f"{invoice.number or f'draft-{invoice.pk}'}.pdf"


def _recipients(org: Organization) -> list[str]:
    users = get_user_model().objects.filter(pk__in=members.owner_ids(org.slug))
    return sorted({u.email for u in users if u.email})


def send_issued_email(*, invoice_id: int) -> None:
    """E-mail an issued invoice, PDF attached, to its Organization's owners (outbox task)."""
    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    recipients = _recipients(invoice.organization)
    if not recipients or invoice.number is None:
        return
    org = invoice.organization
    sovereign = Sovereign.objects.order_by("pk").first()
    link = f"https://console.{sovereign.fqdn}/billing/{org.slug}/" if sovereign else ""
    due = format_money(invoice.total_minor, invoice.currency)
    body = (
        f"Invoice {invoice.number} for {org.display_name} is attached.\n"
        f"Total {format_money(invoice.gross_minor, invoice.currency)}, credit applied "
        f"{format_money(invoice.credit_applied_minor, invoice.currency)}, left to pay {due}.\n"
    )
    message = EmailMessage(
        subject=f"Invoice {invoice.number} ({due} to pay)",
        body=body + (f"\n{link}\n" if link else ""),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    message.attach(filename(invoice), render_pdf(invoice), "application/pdf")
    message.send()
