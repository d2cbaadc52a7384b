"""Console → BSS → Invoices: list and filter, CSV export, the document (HTML, PDF), issue a draft,
record a payment, void with a credit note, start the month's billing run."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from billing import checkout, invoices, runs, usage
from billing.forms import PaymentForm
from billing.models import Invoice, InvoiceStatus, OrderStatus
from billing.money import decimal_text
from core.errors import ConflictError
from rbac import access

from . import require

PERIOD = re.compile(r"^\d{4}-\d{2}$")


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def filtered(request: HttpRequest) -> tuple[QuerySet[Invoice], dict[str, str]]:
    """The invoices the list's filters select (status, period, customer or number, issued from/to);
    values that do not parse are dropped (and shown empty)."""
    get = request.GET
    shown = {
        "status": get.get("status", "") if get.get("status") in InvoiceStatus.values else "",
        "period": get.get("period", "") if PERIOD.match(get.get("period", "")) else "",
        "q": (get.get("q") or "").strip()[:64],
        "issued_from": get.get("issued_from", "") if _date(get.get("issued_from", "")) else "",
        "issued_to": get.get("issued_to", "") if _date(get.get("issued_to", "")) else "",
    }
    qs = Invoice.objects.select_related("organization", "order")
    if shown["status"]:
        qs = qs.filter(status=shown["status"])
    if shown["period"]:
        qs = qs.filter(period=shown["period"])
    if shown["q"]:
        q = shown["q"]
        qs = qs.filter(
            Q(number__icontains=q)
            | Q(organization__slug__icontains=q)
            | Q(organization__display_name__icontains=q)
        )
    if shown["issued_from"]:
        qs = qs.filter(issued_at__date__gte=shown["issued_from"])
    if shown["issued_to"]:
        qs = qs.filter(issued_at__date__lte=shown["issued_to"])
    return qs.order_by("-created_at", "-pk"), shown


@login_required
@require_GET
def invoice_list(request: HttpRequest) -> HttpResponse:
    require(request, "billing.read")
    qs, shown = filtered(request)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/invoice_list.html",
        {
            "page": page,
            "shown": shown,
            "query": request.GET.urlencode(),
            "statuses": InvoiceStatus.choices,
            "payment_form": PaymentForm(),
            "can_manage": access.is_operator(request.user, "billing.manage"),
            "last_period": runs.previous_period(),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_HEADER = [
    "number",
    "status",
    "organization",
    "period",
    "order",
    "issued_at",
    "paid_at",
    "currency",
    "subtotal",
    "tax",
    "total",
    "credit_applied",
    "to_pay",
    "payment_reference",
]


def _csv_rows(qs: QuerySet[Invoice]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for inv in qs.iterator(chunk_size=2000):
        money = [  # numbers without grouping: the currency has its own column
            decimal_text(amount, inv.currency)
            for amount in (
                inv.subtotal_minor,
                inv.tax_minor,
                inv.gross_minor,
                inv.credit_applied_minor,
                inv.total_minor,
            )
        ]
        yield writer.writerow(
            [
                inv.number or "",
                inv.status,
                inv.organization.slug,
                inv.period,
                inv.order_id or "",
                inv.issued_at.isoformat() if inv.issued_at else "",
                inv.paid_at.isoformat() if inv.paid_at else "",
                inv.currency,
                *money,
                inv.payment_reference,
            ]
        )


@login_required
@require_GET
def invoice_export(request: HttpRequest) -> StreamingHttpResponse:
    require(request, "billing.read")
    qs, _ = filtered(request)
    response = StreamingHttpResponse(_csv_rows(qs), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="invoices.csv"'
    return response


@login_required
@require_GET
def invoice_document(request: HttpRequest, pk: int, fmt: str = "html") -> HttpResponse:
    require(request, "billing.read")
    invoice = get_object_or_404(Invoice.objects.select_related("organization", "order"), pk=pk)
    return document_response(invoice, fmt)


def document_response(invoice: Invoice, fmt: str) -> HttpResponse:
    """The printable invoice as HTML, or the same as a PDF download."""
    if fmt == "pdf":
        response = HttpResponse(invoices.render_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoices.filename(invoice)}"'
        return response
    return HttpResponse(invoices.render_html(invoice))


@login_required
@require_POST
def invoice_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    require(request, "billing.manage")
    invoice = get_object_or_404(Invoice.objects.select_related("order"), pk=pk)
    back = request.POST.get("next") or ""
    try:
        if action == "issue":
            issued = invoices.issue(by=request.user, invoice_id=invoice.pk)
            messages.success(request, f"Invoice {issued.number} issued.")
        elif action == "void":
            note = invoices.void(
                by=request.user, invoice=invoice, reason=request.POST.get("reason", "")
            )
            tail = f" with credit note {note.number}" if note else ""
            messages.success(request, f"Invoice {invoice} is void{tail}.")
        elif action == "pay":
            if invoice.order is None or invoice.order.status != OrderStatus.AWAITING_PAYMENT:
                raise ConflictError({"reference": f"Invoice {invoice} is not awaiting payment."})
            checkout.record_payment(
                by=request.user,
                order=invoice.order,
                reference=request.POST.get("reference", ""),
            )
            messages.success(request, f"Payment recorded: invoice {invoice} is paid.")
        else:
            return HttpResponse(status=404)
    except ValidationError as exc:
        messages.error(request, f"Invoice {invoice}: " + " ".join(exc.messages))
    return redirect(back if back.startswith("/bss/") else "billing:invoices")


@login_required
@require_POST
def billing_run(request: HttpRequest) -> HttpResponse:
    """Start the billing run for a month that is over (in the background; safe to repeat)."""
    require(request, "billing.manage")
    period = (request.POST.get("period") or "").strip()
    try:
        _, end = usage.month_bounds(period)
        runs.check_over(period, end)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("billing:invoices")
    from billing.tasks import billing_run_task

    transaction.on_commit(lambda: billing_run_task.delay(period))
    messages.success(
        request, f"The billing run for {period} has started; its invoices appear below."
    )
    return redirect(f"/bss/invoices/?period={period}")
