"""Console → BSS → Orders and Customers: manual payments, balances, credit adjustments."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing import checkout, ledger
from billing.forms import CreditAdjustForm, PaymentForm, RefundForm
from billing.models import Order, OrderStatus
from billing.payments import PaymentError
from billing.payments import events as payment_events
from core import pagination
from core.forms import apply_errors
from orgs.models import Organization
from rbac import access

from . import require


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    require(request, "billing.read")
    status = request.GET.get("status", "")
    qs = Order.objects.select_related("organization", "invoice", "placed_by")
    if status in OrderStatus.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/order_list.html",
        {
            "page": page,
            "status": status,
            "statuses": OrderStatus.choices,
            "payment_form": PaymentForm(),
            "refund_form": RefundForm(),
            "can_manage": access.is_operator(request.user, "billing.manage"),
        },
    )


@login_required
@require_POST
def order_pay(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "billing.manage")
    order = get_object_or_404(Order, pk=pk)
    form = PaymentForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors.get_json_data())
        checkout.record_payment(
            by=request.user, order=order, reference=form.cleaned_data["reference"]
        )
    except ValidationError as exc:
        messages.error(request, "Payment not recorded: " + " ".join(exc.messages))
        return redirect("billing:orders")
    messages.success(request, f"Payment recorded for order {order.pk}.")
    return redirect("billing:orders")


@login_required
@require_POST
def order_refund(request: HttpRequest, pk: int) -> HttpResponse:
    """Refund (part of) a card payment: the provider gives the money back, a credit note says so."""
    require(request, "billing.manage")
    order = get_object_or_404(Order, pk=pk)
    form = RefundForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors.get_json_data())
        note = payment_events.refund_order(
            by=request.user,
            order=order,
            amount_minor=form.cleaned_data["amount"],
            reason=form.cleaned_data["reason"],
        )
    except (ValidationError, PaymentError) as exc:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, f"Not refunded: {text}")
        return redirect("billing:orders")
    messages.success(request, f"Refunded: credit note {note.number} for order {order.pk}.")
    return redirect("billing:orders")


@login_required
@require_GET
def customer_list(request: HttpRequest) -> HttpResponse:
    require(request, "billing.read")
    orgs = (
        Organization.objects.filter(kind="customer")
        .annotate(balance=Sum("ledger__amount_minor"))
        .order_by("slug")
    )
    query = (request.GET.get("q") or "").strip()
    if query:
        orgs = orgs.filter(Q(slug__icontains=query) | Q(display_name__icontains=query))
    page = Paginator(orgs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/customer_list.html",
        {"page": page, "q": query, "currency": ledger.currency()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def customer_detail(request: HttpRequest, slug: str) -> HttpResponse:
    require(request, "billing.read")
    org = get_object_or_404(Organization, slug=slug)
    form = CreditAdjustForm(request.POST or None)
    if request.method == "POST":
        require(request, "billing.manage")
        if form.is_valid():
            data = form.cleaned_data
            try:
                ledger.adjust_credit(
                    by=request.user,
                    org=org,
                    amount_minor=data["amount"],
                    direction=data["direction"],
                    reason=data["reason"],
                    note=data["note"],
                )
            except ValidationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, "Ledger entry added.")
                return redirect("billing:customer", slug=org.slug)
    return render(
        request,
        "billing/customer_detail.html",
        {
            "org": org,
            "form": form,
            "balance": ledger.balance(org),
            "currency": ledger.currency(),
            # three lists, each paged on its own (a cursor parameter each)
            "entries": pagination.paginate_request(
                request,
                org.ledger.select_related("actor"),
                order=("-created_at", "-id"),
                param="entries",
            ),
            "orders": pagination.paginate_request(
                request, org.orders.all(), order=("-placed_at", "-id"), param="orders"
            ),
            "invoices": pagination.paginate_request(
                request,
                org.invoices.select_related("order"),
                order=("-created_at", "-id"),
                param="invoices",
            ),
            "can_manage": access.is_operator(request.user, "billing.manage"),
        },
        status=400 if form.errors else 200,
    )
