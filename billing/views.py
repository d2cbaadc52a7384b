"""Customer-facing BSS pages: the public redeem page, the sign-up wizard, quotes, billing overview,
plan changes, card payments and the provider's webhook."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import confirm, links, pagination
from core.errors import ConflictError
from core.forms import apply_errors
from orgs import services as org_services
from orgs.models import Organization
from rbac import access

from . import checkout, ledger, limits, pricing, quotes, subscriptions, vouchers
from .forms import CheckoutForm, PlanChangeForm, RedeemEntryForm, RedeemIntoOrgForm
from .models import (
    Invoice,
    InvoiceStatus,
    Order,
    OrderStatus,
    Plan,
    Quote,
    QuoteKind,
    QuoteStatus,
    Redemption,
)
from .payments import NOT_AVAILABLE, BadSignature, PaymentError, card_provider
from .payments import events as payment_events

SESSION_KEY = "voucher_code"
NEWEST = ("-created_at", "-id")  # ledger entries, the latest first


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
        "form": RedeemEntryForm(initial={"code": code}),  # what was typed stays in the field
    }
    if preview.status == "not_valid":
        return render(request, "billing/redeem.html", context, status=404)
    if preview.status == "ended":
        return render(request, "billing/redeem.html", context, status=410)
    if request.session.get(SESSION_KEY) != preview.code:  # unchanged: no session write
        request.session[SESSION_KEY] = preview.code
    next_url = _checkout_url(preview.code)
    manageable = _manageable_orgs(request)
    used = set(
        Redemption.objects.filter(
            voucher__code=preview.code, organization__in=manageable
        ).values_list("organization_id", flat=True)
    )
    orgs = [org for org in manageable if org.pk not in used]
    context.update(
        next_url=next_url,
        signup_url=reverse("signup") + "?" + urlencode({"next": next_url}),
        login_url=reverse("login") + "?" + urlencode({"next": request.get_full_path()}),
        into_form=RedeemIntoOrgForm(initial={"code": preview.code}, orgs=orgs) if orgs else None,
        already_used=[org for org in manageable if org.pk in used],
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


def _offered_voucher(request: HttpRequest, typed: str) -> vouchers.Preview | None:
    """A code previewed earlier in this session, offered (never filled in) at checkout."""
    remembered = request.session.get(SESSION_KEY) or ""
    if not remembered or vouchers.normalize(typed) == remembered:
        return None
    found = vouchers.preview(remembered)
    return found if found.status == "valid" else None


@login_required
@require_http_methods(["GET", "POST"])
def checkout_view(request: HttpRequest) -> HttpResponse:
    """The Organization wizard: slug, plan, region, an optional voucher → a quote to confirm."""
    code = (request.GET.get("code") or "").strip()  # only an explicit ?code= fills the field
    form = CheckoutForm(
        request.POST if request.method == "POST" else None, initial={"code": code, "plan": "s"}
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if data["code"] and not limits.allow(request, "redeem"):
            form.add_error(None, limits.TOO_MANY)
            status = 429
        else:
            try:
                quote = _wizard_quote(request, form)
            except ValidationError as exc:
                apply_errors(form, exc)
            else:
                return redirect("billing:quote", token=quotes.token(quote))
    if form.errors and status == 200:
        status = 400
    typed = form["code"].value() or ""
    return render(
        request,
        "billing/checkout.html",
        {
            "form": form,
            "offer": _offered_voucher(request, typed),
            "plans": [
                (p, pricing.current_price(plan=p)) for p in Plan.objects.filter(is_active=True)
            ],
        },
        status=status,
    )


def _wizard_quote(request: HttpRequest, form: CheckoutForm) -> Quote:
    data = form.cleaned_data
    slug = data["slug"].strip()
    problem = org_services.slug_available(slug)
    if problem:
        raise ValidationError({"slug": problem})
    quote = quotes.for_new_organization(
        by=request.user,
        slug=slug,
        display_name=data["display_name"],
        region=data["region"],
        plan_code=data["plan"],
        addons=form.addons(),
        voucher_code=data["code"],
    )
    return quotes.save(quote)


def _quote_for(request: HttpRequest, token: str) -> Quote:
    """The quote behind a signed token, if this user may see it (404 otherwise)."""
    pk = quotes.unsign(token)
    quote = Quote.objects.select_related("organization").filter(pk=pk).first() if pk else None
    if quote is None:
        raise Http404("No such quote.")
    if quote.kind == QuoteKind.NEW:
        if quote.requested_by_id != request.user.pk:
            raise Http404("No such quote.")
    else:
        access.get_object_for(
            request.user, Organization, action="billing.manage", pk=quote.organization_id
        )
    return quote


def _allow_checkout_redirect(response: HttpResponse) -> HttpResponse:
    """A form on this page may be answered by a redirect to the provider's hosted checkout:
    the CSP's form-action must allow that origin too."""
    provider = card_provider()
    policy = settings.CONTENT_SECURITY_POLICY
    if provider is not None and policy and "form-action 'self'" in policy:
        response["Content-Security-Policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {provider.checkout_origin}"
        )
    return response


def _quote_page(
    request: HttpRequest, quote: Quote, *, error: str = "", status: int = 200
) -> HttpResponse:
    provider = card_provider()
    response = render(
        request,
        "billing/quote.html",
        {
            "quote": quote,
            "token": quotes.token(quote),
            "error": error,
            "card_available": provider is not None,
            "card_unavailable_message": NOT_AVAILABLE,
            "expired": quote.status != QuoteStatus.OPEN,
        },
        status=status,
    )
    return _allow_checkout_redirect(response)


@login_required
@require_http_methods(["GET", "POST"])
def quote_view(request: HttpRequest, token: str) -> HttpResponse:
    """Show a quote; POST confirms exactly it (or shows the new quote when anything changed)."""
    quote = _quote_for(request, token)
    if request.method == "GET":
        return _quote_page(request, quote)
    if request.POST.get("quote") != token:
        return _quote_page(
            request, quote, error="Confirm the quote shown on this page.", status=400
        )
    payment = request.POST.get("payment") or "invoice"
    try:
        done = checkout.confirm_quote(by=request.user, quote_id=quote.pk)
    except checkout.QuoteChanged as exc:
        return _quote_page(request, exc.fresh, error=exc.messages[0], status=409)
    except ValidationError as exc:
        return _quote_page(request, quote, error=" ".join(exc.messages), status=_status_for(exc))
    if quote.kind == QuoteKind.NEW:
        request.session.pop(SESSION_KEY, None)
    order = done.order
    if order is not None and order.status == OrderStatus.AWAITING_PAYMENT and payment == "card":
        return _pay_by_card(request, order)
    messages.success(request, done.message)
    return redirect("billing:account", slug=done.organization.slug)


def _pay_by_card(request: HttpRequest, order: Order) -> HttpResponse:
    account = links.portal_url(
        reverse("billing:account", kwargs={"slug": order.organization.slug}),
        fallback=request.build_absolute_uri("/"),
    )
    try:
        payment = payment_events.start_card_payment(
            by=request.user,
            order=order,
            success_url=f"{account}?paid={order.pk}",
            cancel_url=f"{account}?unpaid={order.pk}",
        )
    except (PaymentError, ValidationError) as exc:
        text = str(exc) if isinstance(exc, PaymentError) else " ".join(exc.messages)
        messages.error(request, f"{text} The order waits for payment by invoice.")
        return redirect("billing:account", slug=order.organization.slug)
    return redirect(payment.url)


@login_required
@require_GET
def account(request: HttpRequest, slug: str) -> HttpResponse:
    org = access.get_object_for(
        request.user, Organization, action="billing.read", slug=slug, strict=True
    )
    sub = quotes.live_subscription(org)
    response = render(
        request,
        "billing/account.html",
        {
            "org": org,
            "balance": ledger.balance(org),
            "currency": ledger.currency(),
            # four lists, each paged on its own (a cursor parameter each)
            "entries": pagination.paginate_request(
                request, org.ledger.all(), order=NEWEST, param="entries"
            ),
            "orders": pagination.paginate_request(
                request,
                org.orders.select_related("invoice"),
                order=("-placed_at", "-id"),
                param="orders",
            ),
            "invoices": pagination.paginate_request(
                request,
                org.invoices.exclude(status=InvoiceStatus.DRAFT)
                .exclude(issued_at=None)
                .select_related("order"),
                order=("-issued_at", "-id"),
                param="invoices",
            ),
            "payments": pagination.paginate_request(
                request, org.ledger.filter(reason="payment"), order=NEWEST, param="payments"
            ),
            "subscription": sub,
            "can_manage": access.can(request.user, "billing.manage", org),
            "card_available": card_provider() is not None,
            "card_unavailable_message": NOT_AVAILABLE,
            "plan_form": PlanChangeForm(initial={"plan": sub.plan_code if sub else org.plan_code}),
            "returned": request.GET.get("paid") or request.GET.get("unpaid"),
        },
    )
    return _allow_checkout_redirect(response)


@login_required
@require_GET
def invoice_view(request: HttpRequest, slug: str, pk: int, fmt: str = "html") -> HttpResponse:
    """An issued invoice of the Organization, printable HTML or PDF (drafts are not shown)."""
    from .console.invoices import document_response

    org = access.get_object_for(
        request.user, Organization, action="billing.read", slug=slug, strict=True
    )
    invoice = get_object_or_404(
        Invoice.objects.select_related("organization", "order").exclude(status=InvoiceStatus.DRAFT),
        pk=pk,
        organization=org,
    )
    return document_response(invoice, fmt)


def _manage(request: HttpRequest, slug: str) -> Organization:
    return access.get_object_for(request.user, Organization, action="billing.manage", slug=slug)


@login_required
@require_POST
def change_plan(request: HttpRequest, slug: str) -> HttpResponse:
    """A plan change starts with a quote (or a message when nothing would change)."""
    org = _manage(request, slug)
    form = PlanChangeForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        return redirect("billing:account", slug=org.slug)
    try:
        quote = quotes.for_plan_change(
            by=request.user, org=org, plan_code=form.cleaned_data["plan"]
        )
    except quotes.NoChange as exc:
        messages.info(request, " ".join(exc.messages))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        return redirect("billing:quote", token=quotes.token(quotes.save(quote)))
    return redirect("billing:account", slug=org.slug)


@login_required
@require_http_methods(["GET", "POST"])
def subscription_action(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    """Cancel at the end of the period (a GET shows the confirmation), reactivate, or keep the
    current plan (drop a downgrade)."""
    if action not in ("cancel", "reactivate", "keep"):
        raise Http404("No such action.")
    org = _manage(request, slug)
    if request.method == "GET":
        if action != "cancel":
            raise Http404("Nothing to confirm.")
        return _confirm_cancel(request, org)
    try:
        if action == "keep":
            subscriptions.keep_current_plan(by=request.user, org=org)
            text = "The scheduled plan change is dropped; your plan stays."
        else:
            sub = subscriptions.set_cancel_at_period_end(
                by=request.user, org=org, cancel=action == "cancel"
            )
            end = sub.period_end.strftime("%Y-%m-%d")
            text = (
                f"The subscription ends on {end}; nothing more is charged."
                if action == "cancel"
                else f"The subscription continues after {end}."
            )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, text)
    return redirect("billing:account", slug=org.slug)


def _confirm_cancel(request: HttpRequest, org: Organization) -> HttpResponse:
    sub = quotes.live_subscription(org)
    if sub is None or sub.cancel_at_period_end:
        raise Http404("No subscription to cancel.")
    account = reverse("billing:account", args=[org.slug])
    return confirm.page(
        request,
        title=f"Cancel the subscription of {org.display_name}",
        consequence=[
            f"Plan {sub.plan_code.upper()} ends on {sub.period_end:%Y-%m-%d}; nothing more is "
            "charged after that.",
            "Until then everything keeps running, and you can reactivate it.",
        ],
        button="Cancel at the end of the period",
        cancel_url=account,
        crumbs=[(org.display_name, reverse("orgs:detail", args=[org.slug])), ("Billing", account)],
    )


@login_required
@require_POST
def order_action(request: HttpRequest, slug: str, pk: int, action: str) -> HttpResponse:
    """Pay an awaiting order by card, or cancel it (its held credit comes back)."""
    if action not in ("card", "cancel"):
        raise Http404("No such action.")
    org = _manage(request, slug)
    order = get_object_or_404(Order, pk=pk, organization=org)
    if action == "card":
        return _pay_by_card(request, order)
    if order.status != OrderStatus.AWAITING_PAYMENT:
        messages.error(request, f"Order {order.pk} is {order.get_status_display().lower()}.")
    elif not order.customer_may_cancel:
        messages.error(
            request, f"Order {order.pk} is for usage already consumed: it cannot be cancelled."
        )
    else:
        checkout.cancel_order(by=request.user, order=order, reason="cancelled by the customer")
        messages.success(request, f"Order {order.pk} is cancelled; its invoice is void.")
    return redirect("billing:account", slug=org.slug)


@csrf_exempt  # authenticated by the provider's signature instead
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    provider = card_provider()
    if provider is None or provider.name != "stripe":
        raise Http404("No Stripe account is configured.")
    try:
        outcome = payment_events.handle(provider, request.body, dict(request.headers))
    except BadSignature:
        return JsonResponse(
            {"errors": {"signature": ["The signature does not verify."]}}, status=400
        )
    return JsonResponse({"outcome": outcome})
