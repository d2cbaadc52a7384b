"""The monthly billing run: `manage.py run_billing --period 2026-11`, the Celery beat task (the
previous month, on `BILLING_RUN_DAY`), or Console → BSS → Invoices.

1. Subscriptions whose period ended by the end of the month are renewed or ended first
   (`subscriptions.advance_due`): their renewal orders are invoiced (or paid from credit) as always.
2. Every Organization with usage whose window starts in the month gets one **draft** invoice of
   rated usage (`billing.usage`), tax per line at the Sovereign's rate. Drafts are written in
   chunks of `CHUNK` Organizations, a transaction each, and (organization, period) is unique: an
   Organization that already has an invoice for the month is skipped, so a second run writes
   nothing and a run that stopped half-way (killed, crashed) picks up where it stopped.
3. With `issue` (`BILLING_RUN_ISSUE`, default true) every draft of the month is issued, a chunk
   per transaction (`billing.invoices.issue_many`: numbers, credit applied, e-mail,
   `catalyst.invoice.issued`).

Only a month that is over can be billed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from orgs.models import Organization

from . import invoices, subscriptions, usage
from .models import BillingRun, Invoice, InvoiceLine, InvoiceStatus, Plan
from .money import line_tax
from .pricing import _sovereign_terms

log = logging.getLogger(__name__)
CHUNK = 200  # Organizations drafted, and drafts issued, per transaction


@dataclass
class RunResult:
    period: str
    renewed: int = 0
    drafted: int = 0
    issued: int = 0
    skipped: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int | str]:
        return dict(self.__dict__)


def previous_period(now: datetime | None = None) -> str:
    today = timezone.localtime(now or timezone.now())
    year, month = (today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)
    return f"{year:04d}-{month:02d}"


def _invoice(
    org_id: int, period: str, lines: list[usage.RatedLine], currency: str, tax_rate_bp: int
) -> tuple[Invoice, list[InvoiceLine]]:
    subtotal = sum(line.amount_minor for line in lines)
    taxes = [line_tax(line.amount_minor, tax_rate_bp) for line in lines]
    invoice = Invoice(
        organization_id=org_id,
        period=period,
        currency=currency,
        tax_rate_bp=tax_rate_bp,
        subtotal_minor=subtotal,
        tax_minor=sum(taxes),
        total_minor=subtotal + sum(taxes),
        status=InvoiceStatus.DRAFT,
        issued_at=None,
    )
    rows = [
        InvoiceLine(
            position=position,
            kind="usage",
            code=line.sku,
            description=line.description,
            quantity=line.quantity,
            unit=line.unit,
            unit_price=line.unit_price,
            amount_minor=line.amount_minor,
            tax_minor=tax,
        )
        for position, (line, tax) in enumerate(zip(lines, taxes, strict=True), start=1)
    ]
    return invoice, rows


def draft_chunk(
    chunk: list[tuple[int, list[usage.RatedLine]]], *, period: str, currency: str, tax_rate_bp: int
) -> int:
    """Drafts for a chunk of Organizations in one transaction; if another run wrote one of them
    meanwhile (the unique (organization, period)), the chunk is written one by one, skipping it.
    Returns how many drafts were written."""
    made = [_invoice(org_id, period, lines, currency, tax_rate_bp) for org_id, lines in chunk]
    try:
        with transaction.atomic():
            Invoice.objects.bulk_create([invoice for invoice, _ in made])
            for invoice, rows in made:
                for row in rows:
                    row.invoice = invoice
            InvoiceLine.objects.bulk_create([row for _, rows in made for row in rows])
        return len(made)
    except IntegrityError:
        written = 0
        for org_id, lines in chunk:
            invoice, rows = _invoice(org_id, period, lines, currency, tax_rate_bp)
            try:
                with transaction.atomic():
                    invoice.save()
                    for row in rows:
                        row.invoice = invoice
                    InvoiceLine.objects.bulk_create(rows)
                written += 1
            except IntegrityError:
                continue
        return written


def check_over(period: str, end: datetime, now: datetime | None = None) -> None:
    if end > (now or timezone.now()):
        raise ValidationError(
            {"period": f"{period} is not over yet: it can be billed from {end:%Y-%m-%d}."}
        )


def run(period: str, *, issue: bool | None = None, now: datetime | None = None) -> RunResult:
    """Bill `period` (YYYY-MM); safe to run again, and resumes a run that stopped."""
    start, end = usage.month_bounds(period)
    check_over(period, end, now)
    issue = settings.BILLING_RUN_ISSUE if issue is None else issue
    result = RunResult(period=period)
    result.renewed = subscriptions.advance_due(now=end)
    BillingRun.objects.get_or_create(period=period)
    currency, tax_rate_bp = _sovereign_terms()
    book = usage.UsageBook(start, currency)
    flexi_plans = set(Plan.objects.filter(is_flexi=True).values_list("code", flat=True))
    used = usage.quantities(start, end)
    done = set(Invoice.objects.filter(period=period).values_list("organization_id", flat=True))
    plans = dict(Organization.objects.filter(pk__in=list(used)).values_list("pk", "plan_code"))
    pending: list[tuple[int, list[usage.RatedLine]]] = []
    for org_id in sorted(used):
        if org_id in done:
            result.skipped += 1
            continue
        try:
            lines = usage.rate(book, used[org_id], flexi=plans.get(org_id) in flexi_plans)
        except ValidationError as exc:
            log.error("billing run %s: organization %s not billed: %s", period, org_id, exc)
            result.failed += 1
            continue
        if lines:  # (none: only usage its plan includes)
            pending.append((org_id, lines))
    for start_at in range(0, len(pending), CHUNK):
        chunk = pending[start_at : start_at + CHUNK]
        written = draft_chunk(chunk, period=period, currency=currency, tax_rate_bp=tax_rate_bp)
        result.drafted += written
        result.skipped += len(chunk) - written
    if issue:
        drafts = Invoice.objects.filter(period=period, status=InvoiceStatus.DRAFT)
        ids = list(drafts.order_by("pk").values_list("pk", flat=True))
        for start_at in range(0, len(ids), CHUNK):
            result.issued += invoices.issue_many(
                by=None, invoice_ids=ids[start_at : start_at + CHUNK]
            )
    BillingRun.objects.filter(period=period).update(
        finished_at=timezone.now(),
        invoices_made=Invoice.objects.filter(period=period).count(),
        invoices_issued=Invoice.objects.filter(period=period)
        .exclude(status=InvoiceStatus.DRAFT)
        .count(),
    )
    log.info("billing run %s: %s", period, result.as_dict())
    return result
