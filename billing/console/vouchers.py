"""Console → BSS → Vouchers: issue, list, export, history, (de)activate, revoke."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing import vouchers
from billing.forms import VoucherIssueForm
from billing.models import Voucher, VoucherState
from billing.money import decimal_text
from core import confirm
from core.forms import apply_errors
from core.models import AuditEvent
from core.text import spreadsheet_safe
from rbac import access

from . import require


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
    require(request, "vouchers.read")
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
            "can_manage": access.is_operator(request.user, "vouchers.manage"),
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
        row = [
            v.code,
            v.state(now).value,
            decimal_text(v.credit_minor, v.currency),
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
        yield writer.writerow([spreadsheet_safe(cell) for cell in row])


@login_required
@require_GET
def voucher_export(request: HttpRequest) -> StreamingHttpResponse:
    require(request, "vouchers.read")
    qs, _, _ = _filtered_vouchers(request)
    response = StreamingHttpResponse(
        _csv_rows(qs.order_by("pk")), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="vouchers.csv"'
    return response


def _terms(data: dict[str, Any]) -> vouchers.VoucherTerms:
    return vouchers.VoucherTerms(
        credit_minor=data["credit"],
        description=data["description"],
        reason=data["reason"],
        max_redemptions=data["max_redemptions"],
        valid_from=data["valid_from"],
        valid_until=data["valid_until"],
        plan_code=data["plan_code"],
        is_active=data["is_active"],
    )


@login_required
@require_http_methods(["GET", "POST"])
def voucher_issue(request: HttpRequest) -> HttpResponse:
    require(request, "vouchers.manage")
    form = VoucherIssueForm(request.POST or None, confirming="confirm_ended" in request.POST)
    ended = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        terms = _terms(data)
        batch = {k: data[k] for k in ("count", "code", "recipient_email")}
        try:
            vouchers.check_issue(terms, **batch)
            if terms.has_ended() and not data.get("confirm_ended"):
                # shown again with a warning and a checkbox: issued only once confirmed
                ended = True
                form = VoucherIssueForm(request.POST, confirming=True)
                form.is_valid()
            else:
                return _issued(
                    request, vouchers.issue_vouchers(by=request.user, terms=terms, **batch)
                )
        except ValidationError as exc:
            apply_errors(form, exc)
    return render(
        request,
        "billing/voucher_issue.html",
        {"form": form, "ended": ended},
        status=400 if form.errors else 200,
    )


def _issued(request: HttpRequest, issued: list[Voucher]) -> HttpResponse:
    if len(issued) == 1:
        messages.success(request, f"Voucher {issued[0].code} issued.")
        return redirect("billing:voucher", pk=issued[0].pk)
    messages.success(request, f"{len(issued)} vouchers issued in batch {issued[0].batch}.")
    return redirect(reverse("billing:vouchers") + f"?q={issued[0].batch}")


@login_required
@require_GET
def voucher_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "vouchers.read")
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
            "can_manage": access.is_operator(request.user, "vouchers.manage"),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def voucher_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "vouchers.manage")
    voucher = get_object_or_404(Voucher, pk=pk)
    form = confirm.TypedConfirmForm(
        request.POST if request.method == "POST" else None,
        expected=voucher.code,
        label="Voucher code",
        normalize=vouchers.normalize,
    )
    if request.method == "POST" and form.is_valid():
        vouchers.revoke_voucher(by=request.user, voucher=voucher)
        messages.success(request, f"Voucher {voucher.code} revoked; its past redemptions stay.")
        return redirect("billing:voucher", pk=voucher.pk)
    back = reverse("billing:voucher", args=[voucher.pk])
    return confirm.page(
        request,
        title=f"Revoke voucher {voucher.code}",
        consequence=[
            "The code stops working at once and cannot be restored.",
            "Credit already redeemed stays with its Organizations, and the voucher's history "
            "is kept.",
        ],
        button=f"Revoke {voucher.code}",
        cancel_url=back,
        crumbs=[("Vouchers", reverse("billing:vouchers")), (voucher.code, back)],
        form=form,
        expected=voucher.code,
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def voucher_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "vouchers.manage")
    voucher = get_object_or_404(Voucher, pk=pk)
    try:
        vouchers.set_voucher_active(
            by=request.user, voucher=voucher, active=request.POST.get("active") == "1"
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("billing:voucher", pk=voucher.pk)
