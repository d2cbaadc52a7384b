"""Console → BSS → Plans & prices: plans, effective-dated prices, add-ons."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from billing import pricing
from billing.forms import AddOnForm, PlanForm, PriceForm, TaxForm
from billing.models import AddOn, Plan, UsagePrice
from billing.usage import describe
from core.forms import apply_errors
from orgs.models import Sovereign
from rbac import access

from . import require


@login_required
@require_GET
def plan_list(request: HttpRequest) -> HttpResponse:
    require(request, "billing.read")
    now = timezone.now()
    plans = [(p, pricing.current_price(plan=p, at=now)) for p in Plan.objects.all()]
    addons = [(a, pricing.current_price(addon=a, at=now)) for a in AddOn.objects.all()]
    newest: dict[str, UsagePrice] = {}
    upcoming: dict[str, list[tuple[UsagePrice, str]]] = {}
    for price in UsagePrice.objects.order_by("effective_from", "pk"):
        if price.effective_from <= now:
            newest[price.sku] = price
        else:  # scheduled: shown under the price in force
            upcoming.setdefault(price.sku, []).append((price, describe(price)))
    usage_rows = [  # (the SKU's price in force, or its first scheduled one; tiers; scheduled)
        (
            newest.get(sku) or upcoming[sku][0][0],
            describe(newest[sku]) if sku in newest else "",
            upcoming.get(sku, []),
        )
        for sku in sorted(newest.keys() | upcoming.keys())
    ]
    sovereign = Sovereign.objects.order_by("pk").first()
    return render(
        request,
        "billing/plan_list.html",
        {
            "plans": plans,
            "addons": addons,
            "usage_prices": usage_rows,
            "tax_rate_bp": sovereign.tax_rate_bp if sovereign else 0,
            "tax_form": TaxForm(),
            "can_manage": access.is_operator(request.user, "billing.manage"),
        },
    )


@login_required
@require_http_methods(["POST"])
def tax_set(request: HttpRequest) -> HttpResponse:
    require(request, "billing.manage")
    form = TaxForm(request.POST)
    if form.is_valid():
        rate_bp = int(form.cleaned_data["rate"] * 100)
        pricing.set_tax_rate(by=request.user, rate_bp=rate_bp)
        messages.success(request, f"Tax rate set to {form.cleaned_data['rate'].normalize():f} %.")
    else:
        problems = [str(message) for message in form.errors.get("rate", [])]
        messages.error(request, "Tax rate not changed: " + " ".join(problems))
    return redirect("billing:plans")


@login_required
@require_http_methods(["GET", "POST"])
def plan_edit(request: HttpRequest, code: str) -> HttpResponse:
    require(request, "billing.manage")
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
    require(request, "billing.manage")
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
