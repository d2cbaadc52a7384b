"""Customer-facing BSS pages: the public redeem page, the sign-up wizard's checkout, billing overview."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import ConflictError
from core.forms import apply_errors
from orgs.models import Organization
from rbac import access

from . import checkout, ledger, limits, pricing, vouchers
from .forms import CheckoutForm, PlanChangeForm, RedeemEntryForm, RedeemIntoOrgForm
from .models import Order, Plan

SESSION_KEY = "voucher_code"


def _status_for(exc: ValidationError) -> int:
    if isinstance(exc, vouchers.VoucherNotValid):
        return 404
    if isinstance(exc, vouchers.VoucherEnded):
        return 410
    if isinstance(exc, ConflictError):
        return 409
    return 400


def _manageable_orgs(request: HttpRequest) -> list[Organization]:
    if not request.user.is_authenticated:
        return []
    qs = Organization.objects.active().filter(kind="customer")
    return list(access.visible(request.user, qs, "billing.manage"))


def _checkout_url(code: str) -> str:
    return reverse("billing:checkout") + "?" + urlencode({"code": code})


@require_http_methods(["GET", "POST"])
def redeem(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _redeem_into_org(request)
    code = (request.GET.get("code") or "").strip()
    if not code:
        return render(
            request, "billing/redeem.html", {"state": "missing", "form": RedeemEntryForm()}
        )
    if not limits.allow(request, "preview"):
        return render(
            request,
            "billing/redeem.html",
            {"state": "limited", "form": RedeemEntryForm()},
            status=429,
        )
    preview = vouchers.preview(code)
    context: dict[str, object] = {
        "state": preview.status,
        "preview": preview,
        "form": RedeemEntryForm(),
    }
    if preview.status == "not_valid":
        return render(request, "billing/redeem.html", context, status=404)
    if preview.status == "ended":
        return render(request, "billing/redeem.html", context, status=410)
    if request.session.get(SESSION_KEY) != preview.code:  # unchanged: no session write
        request.session[SESSION_KEY] = preview.code
    next_url = _checkout_url(preview.code)
    orgs = _manageable_orgs(request)
    context.update(
        next_url=next_url,
        signup_url=reverse("signup") + "?" + urlencode({"next": next_url}),
        login_url=reverse("login") + "?" + urlencode({"next": request.get_full_path()}),
        into_form=RedeemIntoOrgForm(initial={"code": preview.code}, orgs=orgs) if orgs else None,
    )
    return render(request, "billing/redeem.html", context)


@login_required
def _redeem_into_org(request: HttpRequest) -> HttpResponse:
    form = RedeemIntoOrgForm(request.POST, orgs=_manageable_orgs(request))
    status = 400
    if form.is_valid() and not limits.allow(request, "redeem"):
        form.add_error(None, limits.TOO_MANY)
        status = 429
    elif form.is_valid():
        org = access.get_object_for(
            request.user,
            Organization,
            action="billing.manage",
            slug=form.cleaned_data["organization"],
        )
        try:
            vouchers.redeem_voucher(code=form.cleaned_data["code"], org=org, by=request.user)
        except ValidationError as exc:
            form.add_error(None, exc.messages)  # the code is a hidden field: show it on top
            status = _status_for(exc)
        else:
            request.session.pop(SESSION_KEY, None)
            messages.success(request, f"Voucher redeemed: {org.display_name} has new credit.")
            return redirect("billing:account", slug=org.slug)
    return render(
        request,
        "billing/redeem.html",
        {"state": "error", "into_form": form, "form": RedeemEntryForm()},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def checkout_view(request: HttpRequest) -> HttpResponse:
    """The Organization wizard: slug, plan, region, and the voucher carried from /redeem/."""
    code = (request.GET.get("code") or request.session.get(SESSION_KEY) or "").strip()
    form = CheckoutForm(request.POST or None, initial={"code": code, "plan": "s"})
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if data["code"] and not limits.allow(request, "redeem"):
            form.add_error(None, limits.TOO_MANY)
            status = 429
        else:
            try:
                order = checkout.start_organization(
                    by=request.user,
                    slug=data["slug"].strip(),
                    display_name=data["display_name"],
                    plan_code=data["plan"],
                    region=data["region"],
                    voucher_code=data["code"],
                    addons=form.addons(),
                )
            except ValidationError as exc:
                apply_errors(form, exc)
            else:
                request.session.pop(SESSION_KEY, None)
                messages.success(request, _order_message(order))
                return redirect("billing:account", slug=order.organization.slug)
    if form.errors and status == 200:
        status = 400
    return render(
        request,
        "billing/checkout.html",
        {
            "form": form,
            "plans": [
                (p, pricing.current_price(plan=p)) for p in Plan.objects.filter(is_active=True)
            ],
        },
        status=status,
    )


def _order_message(order: Order) -> str:
    from .money import format_money

    total = format_money(order.total_minor, order.currency)
    if order.status == "paid":
        return f"{order.organization.display_name} is on plan {order.plan_code.upper()}; {total} paid from credit."
    return f"Order placed: {total} is awaiting payment (invoice {order.invoice.number})."


@login_required
@require_GET
def account(request: HttpRequest, slug: str) -> HttpResponse:
    org = access.get_object_for(request.user, Organization, action="billing.read", slug=slug)
    return render(
        request,
        "billing/account.html",
        {
            "org": org,
            "balance": ledger.balance(org),
            "currency": ledger.currency(),
            "entries": org.ledger.all()[:100],
            "orders": org.orders.select_related("invoice").all()[:50],
            "subscription": org.subscriptions.filter(status="active").first(),
            "can_manage": access.can(request.user, "billing.manage", org),
            "plan_form": PlanChangeForm(initial={"plan": org.plan_code}),
        },
    )


@login_required
@require_POST
def change_plan(request: HttpRequest, slug: str) -> HttpResponse:
    org = access.get_object_for(request.user, Organization, action="billing.manage", slug=slug)
    form = PlanChangeForm(request.POST)
    if form.is_valid():
        try:
            order = checkout.place_order(
                by=request.user, org=org, plan_code=form.cleaned_data["plan"]
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _order_message(order))
    else:
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
    return redirect("billing:account", slug=org.slug)
