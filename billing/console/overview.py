"""Console → BSS overview: the figures an operator checks first, each linking to its list."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing import ledger
from billing.models import Order, OrderStatus, Redemption, Voucher, VoucherState
from orgs.models import Organization
from rbac import access

from . import require

RECENT = 8


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    require(request, "vouchers.read")
    now = timezone.now()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    currency = ledger.currency()
    orders = Order.objects.filter(currency=currency)
    money = orders.aggregate(
        paid_month=Sum("due_minor", filter=Q(status=OrderStatus.PAID, paid_at__gte=month_start)),
        awaiting=Sum("due_minor", filter=Q(status=OrderStatus.AWAITING_PAYMENT)),
        awaiting_count=Count("pk", filter=Q(status=OrderStatus.AWAITING_PAYMENT)),
    )
    orgs = Organization.objects.aggregate(
        total=Count("pk", filter=~Q(state="archived")),
        suspended=Count("pk", filter=Q(state="suspended")),
        failed=Count("pk", filter=Q(state="failed")),
    )
    can_billing = access.is_operator(request.user, "billing.read")
    context = {
        "currency": currency,
        "money": money,
        "orgs": orgs,
        "vouchers_active": Voucher.objects.in_state(VoucherState.ACTIVE, now).count(),
        "redeemed_week": Redemption.objects.filter(
            redeemed_at__gte=now - timedelta(days=7)
        ).count(),
        "recent_orders": orders.select_related("organization")[:RECENT] if can_billing else [],
        "can_billing": can_billing,
        "month_start": month_start,
    }
    return render(request, "billing/overview.html", context)
