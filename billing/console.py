"""Console → BSS: operator pages for vouchers, the price book, orders and customers.

Every page answers 404 to anyone without the matching global grant (Sovereign operators).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q, Sum
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.forms import apply_errors
from core.models import AuditEvent
from orgs.models import Organization
from rbac import access

from . import checkout, ledger, pricing, vouchers
from .forms import AddOnForm, CreditAdjustForm, PaymentForm, PlanForm, PriceForm, VoucherIssueForm
from .models import AddOn, Order, OrderStatus, Plan, Voucher, VoucherState
from .money import format_money


def _require(request: HttpRequest, action: str) -> None:
    if not access.is_global(request.user, action):
        raise Http404


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    _require(request, "vouchers.read")
    return redirect("billing:vouchers")


def _filtered_vouchers(request: HttpRequest) -> tuple[Any, str, str]:
    state = request.GET.get("state", "")
    query = (request.GET.get("q") or "").strip()
    qs = Voucher.objects.all()
    if state in VoucherState.values:
        qs = qs.in_state(state, timezone.now())
    else:
        state = ""
    if query:
        qs = qs.filter(
            Q(code__icontains=query)
            | Q(description__icontains=query)
            | Q(recipient_email__icontains=query)
            | Q(batch__iexact=query)
        )
    return qs, state, query


@login_required
@require_GET
def voucher_list(request: HttpRequest) -> HttpResponse:
    _require(request, "vouchers.read")
    qs, state, query = _filtered_vouchers(request)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/voucher_list.html",
        {
            "page": page,
            "state": state,
            "q": query,
            "states": VoucherState.choices,
            "now": timezone.now(),
            "can_manage": access.is_global(request.user, "vouchers.manage"),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(qs: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(
        [
            "code",
            "state",
            "credit",
            "currency",
            "redeemed",
            "max_redemptions",
            "reason",
            "description",
            "valid_from",
            "valid_until",
            "plan",
            "recipient_email",
            "batch",
            "link",
        ]
    )
    now = timezone.now()
    prefix = vouchers.redeem_link("")
    for v in qs.iterator(chunk_size=2000):
        yield writer.writerow(
            [
                v.code,
                v.state(now).value,
                format_money(v.credit_minor, v.currency),
                v.currency,
                v.redeemed_count,
                v.max_redemptions,
                v.reason,
                v.description,
                v.valid_from.isoformat(),
                v.valid_until.isoformat() if v.valid_until else "",
                v.plan_code,
                v.recipient_email,
                v.batch,
                prefix + v.code,
            ]
        )


@login_required
@require_GET
def voucher_export(request: HttpRequest) -> StreamingHttpResponse:
    _require(request, "vouchers.read")
    qs, _, _ = _filtered_vouchers(request)
    response = StreamingHttpResponse(
        _csv_rows(qs.order_by("pk")), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="vouchers.csv"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def voucher_issue(request: HttpRequest) -> HttpResponse:
    _require(request, "vouchers.manage")
    form = VoucherIssueForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        terms = vouchers.VoucherTerms(
            credit_minor=data["credit"],
            description=data["description"],
            reason=data["reason"],
            max_redemptions=data["max_redemptions"],
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
            plan_code=data["plan_code"],
            is_active=data["is_active"],
        )
        try:
            issued = vouchers.issue_vouchers(
                by=request.user,
                terms=terms,
                count=data["count"],
                code=data["code"],
                recipient_email=data["recipient_email"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            if len(issued) == 1:
                messages.success(request, f"Voucher {issued[0].code} issued.")
                return redirect("billing:voucher", pk=issued[0].pk)
            messages.success(request, f"{len(issued)} vouchers issued in batch {issued[0].batch}.")
            return redirect(reverse("billing:vouchers") + f"?q={issued[0].batch}")
    return render(
        request, "billing/voucher_issue.html", {"form": form}, status=400 if form.errors else 200
    )


@login_required
@require_GET
def voucher_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "vouchers.read")
    voucher = get_object_or_404(Voucher, pk=pk)
    events = AuditEvent.objects.filter(
        target_type="billing.voucher", target_id=str(voucher.pk)
    ).order_by("-pk")
    return render(
        request,
        "billing/voucher_detail.html",
        {
            "voucher": voucher,
            "state": voucher.state(),
            "link": vouchers.redeem_link(voucher.code),
            "redemptions": voucher.redemptions.select_related("organization", "redeemed_by"),
            "events": events[:100],
            "can_manage": access.is_global(request.user, "vouchers.manage"),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def voucher_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "vouchers.manage")
    voucher = get_object_or_404(Voucher, pk=pk)
    if request.method == "POST":
        vouchers.revoke_voucher(by=request.user, voucher=voucher)
        messages.success(request, f"Voucher {voucher.code} revoked; its past redemptions stay.")
        return redirect("billing:voucher", pk=voucher.pk)
    return render(request, "billing/voucher_revoke.html", {"voucher": voucher})


@login_required
@require_POST
def voucher_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "vouchers.manage")
    voucher = get_object_or_404(Voucher, pk=pk)
    try:
        vouchers.set_voucher_active(
            by=request.user, voucher=voucher, active=request.POST.get("active") == "1"
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("billing:voucher", pk=voucher.pk)


@login_required
@require_GET
def plan_list(request: HttpRequest) -> HttpResponse:
    _require(request, "billing.read")
    now = timezone.now()
    plans = [(p, pricing.current_price(plan=p, at=now)) for p in Plan.objects.all()]
    addons = [(a, pricing.current_price(addon=a, at=now)) for a in AddOn.objects.all()]
    return render(
        request,
        "billing/plan_list.html",
        {
            "plans": plans,
            "addons": addons,
            "can_manage": access.is_global(request.user, "billing.manage"),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def plan_edit(request: HttpRequest, code: str) -> HttpResponse:
    _require(request, "billing.manage")
    plan = get_object_or_404(Plan, code=code)
    plan_form = PlanForm(initial={f: getattr(plan, f) for f in pricing.PLAN_FIELDS})
    price_form = PriceForm()
    if request.method == "POST" and request.POST.get("form") == "price":
        price_form = PriceForm(request.POST)
        if price_form.is_valid() and _set_price(request, price_form, plan=plan):
            return redirect("billing:plans")
    elif request.method == "POST":
        plan_form = PlanForm(request.POST)
        if plan_form.is_valid():
            try:
                pricing.update_plan(by=request.user, plan=plan, **plan_form.cleaned_data)
            except ValidationError as exc:
                apply_errors(plan_form, exc)
            else:
                messages.success(request, f"Plan {plan.name} saved.")
                return redirect("billing:plans")
    errors = plan_form.errors or price_form.errors
    return render(
        request,
        "billing/plan_edit.html",
        {
            "plan": plan,
            "plan_form": plan_form,
            "price_form": price_form,
            "prices": plan.prices.all(),
        },
        status=400 if errors else 200,
    )


def _set_price(request: HttpRequest, form: PriceForm, **target: Any) -> bool:
    try:
        pricing.set_price(
            by=request.user,
            amount_minor=form.cleaned_data["amount"],
            effective_from=form.cleaned_data["effective_from"] or timezone.now(),
            **target,
        )
    except ValidationError as exc:
        apply_errors(form, exc)
        return False
    messages.success(request, "Price saved.")
    return True


@login_required
@require_http_methods(["GET", "POST"])
def addon_create(request: HttpRequest) -> HttpResponse:
    _require(request, "billing.manage")
    form = AddOnForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            pricing.create_addon(
                by=request.user,
                code=data["code"],
                name=data["name"],
                unit=data["unit"],
                amount_minor=data["amount"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            return redirect("billing:plans")
    return render(
        request, "billing/addon_create.html", {"form": form}, status=400 if form.errors else 200
    )


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    _require(request, "billing.read")
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
            "can_manage": access.is_global(request.user, "billing.manage"),
        },
    )


@login_required
@require_POST
def order_pay(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "billing.manage")
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
@require_GET
def customer_list(request: HttpRequest) -> HttpResponse:
    _require(request, "billing.read")
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
    _require(request, "billing.read")
    org = get_object_or_404(Organization, slug=slug)
    form = CreditAdjustForm(request.POST or None)
    if request.method == "POST":
        _require(request, "billing.manage")
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
            "entries": org.ledger.select_related("actor")[:200],
            "orders": org.orders.all()[:50],
            "can_manage": access.is_global(request.user, "billing.manage"),
        },
        status=400 if form.errors else 200,
    )
