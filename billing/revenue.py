"""Console → BSS → Revenue: every figure is one SQL aggregate (no rows are loaded to be summed).

* **MRR**: the sum of the active subscriptions' monthly prices before tax (`recurring_minor`:
  plan, add-ons and Application extras); **ARR** = 12 × MRR.
* **Customers**: Organizations with an active subscription; **new this month**: whose first
  subscription started this month; **churned**: whose subscription ended this month and that have
  none now; **active subscriptions**.
* **Outstanding**: what issued invoices still ask (`total_minor` of `issued`); **credit
  liability**: the sum of the positive ledger balances (credit the Sovereign owes in service).
* **Revenue** by month and plan: orders before tax (`subtotal_minor`), by the month they were
  placed, except cancelled orders and orders whose invoice is void; a month's usage is its own
  series (`usage`).
* **Voucher funnel**: vouchers issued → previewed (at least once on the public pages) → redeemed
  (redemptions) → converted (redeeming Organizations that later paid money).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Case, CharField, Count, Exists, F, Min, OuterRef, Q, Sum, Value, When
from django.db.models.functions import TruncMonth
from django.utils import timezone

from .models import (
    Invoice,
    InvoiceStatus,
    LedgerBalance,
    LedgerEntry,
    Order,
    OrderStatus,
    QuoteKind,
    Redemption,
    Subscription,
    SubscriptionStatus,
    Voucher,
)

MONTHS = 12
PALETTE = ["#3b6fb6", "#e0892b", "#4c9a52", "#b8434b", "#7a5bb0", "#2f9c9c", "#9c7a2f", "#666"]


def month_start(moment: datetime) -> datetime:
    local = timezone.localtime(moment)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def months_back(start: datetime, count: int) -> list[datetime]:
    """`count` month starts ending with `start`, oldest first."""
    out = [start]
    for _ in range(count - 1):
        first = out[0]
        year, month = (first.year - 1, 12) if first.month == 1 else (first.year, first.month - 1)
        out.insert(0, first.replace(year=year, month=month))
    return out


def credit_liability() -> int:
    """The sum of the positive balances (kept per Organization by the ledger's trigger)."""
    total = LedgerBalance.objects.filter(balance_minor__gt=0).aggregate(t=Sum("balance_minor"))
    return int(total["t"] or 0)


def credit_liability_from_ledger() -> int:
    """The same figure summed over the whole ledger (the bench's baseline; tests compare)."""
    table = connection.ops.quote_name(LedgerEntry._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(balance), 0) FROM (SELECT SUM(amount_minor) AS balance "  # noqa: S608
            f"FROM {table} GROUP BY organization_id) AS balances WHERE balance > 0"
        )
        return int(cursor.fetchone()[0])


def kpis(now: datetime | None = None) -> dict[str, int]:
    start = month_start(now or timezone.now())
    active = Subscription.objects.filter(status=SubscriptionStatus.ACTIVE)
    subs = active.aggregate(
        mrr=Sum("recurring_minor"),
        count=Count("pk"),
        customers=Count("organization", distinct=True),
    )
    new = (
        Subscription.objects.values("organization")
        .annotate(first=Min("started_at"))
        .filter(first__gte=start)
        .count()
    )
    churned = (
        Subscription.objects.filter(status=SubscriptionStatus.ENDED, ended_at__gte=start)
        .exclude(organization__in=active.values("organization"))
        .values("organization")
        .distinct()
        .count()
    )
    outstanding = Invoice.objects.filter(status=InvoiceStatus.ISSUED).aggregate(
        total=Sum("total_minor")
    )["total"]
    mrr = int(subs["mrr"] or 0)
    return {
        "mrr": mrr,
        "arr": 12 * mrr,
        "customers": subs["customers"],
        "new": new,
        "churned": churned,
        "active_subscriptions": subs["count"],
        "outstanding": int(outstanding or 0),
        "credit_liability": credit_liability(),
    }


def _revenue_orders() -> Any:
    return Order.objects.exclude(status=OrderStatus.CANCELLED).exclude(
        invoice__status=InvoiceStatus.VOID
    )


def _series() -> Case:
    return Case(
        When(kind=QuoteKind.USAGE, then=Value("usage")),
        default=F("plan_code"),
        output_field=CharField(),
    )


@dataclass
class Trend:
    months: list[datetime]
    series: list[str]
    cells: dict[tuple[str, str], int]  # (YYYY-MM, series) → minor units

    def total(self, month: datetime) -> int:
        key = f"{month:%Y-%m}"
        return sum(v for (m, _), v in self.cells.items() if m == key)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "month": f"{m:%Y-%m}",
                "values": [self.cells.get((f"{m:%Y-%m}", s), 0) for s in self.series],
                "total": self.total(m),
            }
            for m in self.months
        ]


def trend(now: datetime | None = None, months: int = MONTHS) -> Trend:
    starts = months_back(month_start(now or timezone.now()), months)
    rows = (
        _revenue_orders()
        .filter(placed_at__gte=starts[0])
        .annotate(month=TruncMonth("placed_at"), series=_series())
        .values("month", "series")
        .annotate(revenue=Sum("subtotal_minor"))
        .order_by()
    )
    cells: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (f"{timezone.localtime(row['month']):%Y-%m}", row["series"] or "none")
        cells[key] = cells.get(key, 0) + int(row["revenue"] or 0)
    series = sorted({s for _, s in cells}, key=lambda s: (s == "usage", s))
    return Trend(months=starts, series=series, cells=cells)


def top_customers(now: datetime | None = None, limit: int = 10) -> list[dict[str, Any]]:
    since = months_back(month_start(now or timezone.now()), MONTHS)[0]
    return list(
        _revenue_orders()
        .filter(placed_at__gte=since)
        .values("organization__slug", "organization__display_name")
        .annotate(revenue=Sum("subtotal_minor"), orders=Count("pk"))
        .order_by("-revenue", "organization__slug")[:limit]
    )


def funnel() -> list[tuple[str, int]]:
    vouchers = Voucher.objects.aggregate(
        issued=Count("pk"), previewed=Count("pk", filter=Q(previewed_at__isnull=False))
    )
    paid_later = LedgerEntry.objects.filter(
        organization=OuterRef("organization"),
        reason="payment",
        created_at__gte=OuterRef("redeemed_at"),
    )
    redemptions = Redemption.objects.aggregate(redeemed=Count("pk"))
    converted = (
        Redemption.objects.filter(Exists(paid_later)).values("organization").distinct().count()
    )
    return [
        ("Issued", vouchers["issued"]),
        ("Previewed", vouchers["previewed"]),
        ("Redeemed", redemptions["redeemed"]),
        ("Converted to paid", converted),
    ]


@dataclass
class Bar:
    x: int
    y: int
    width: int
    height: int
    color: str
    label: str


def chart(data: Trend, *, width: int = 720, height: int = 240) -> dict[str, Any]:
    """A stacked bar per month (one colour per plan), as coordinates for an inline SVG."""
    pad_left, pad_bottom, pad_top = 8, 24, 8
    top = max([data.total(m) for m in data.months] + [1])
    slot = (width - pad_left) // max(len(data.months), 1)
    plot = height - pad_bottom - pad_top
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(data.series)}
    bars, labels = [], []
    for i, month in enumerate(data.months):
        x = pad_left + i * slot + slot // 6
        base = height - pad_bottom
        key = f"{month:%Y-%m}"
        for series in data.series:
            value = data.cells.get((key, series), 0)
            if value <= 0:
                continue
            h = max(1, value * plot // top)
            base -= h
            bars.append(Bar(x, base, slot * 2 // 3, h, colors[series], f"{key} {series}"))
        labels.append({"x": x + slot // 3, "y": height - 6, "text": f"{month:%b}"})
    legend = [{"series": s, "color": colors[s]} for s in data.series]
    return {"width": width, "height": height, "bars": bars, "labels": labels, "legend": legend}
