"""Console → BSS → Revenue: the KPI strip, the trend by month and plan (SVG chart and the same
figures as a table), the voucher funnel, top customers, and the CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from billing import ledger, revenue
from billing.money import decimal_text

from . import require


@login_required
@require_GET
def revenue_page(request: HttpRequest) -> HttpResponse:
    require(request, "billing.read")
    data = revenue.trend()
    return render(
        request,
        "billing/revenue.html",
        {
            "kpis": revenue.kpis(),
            "trend": data,
            "rows": data.rows(),
            "chart": revenue.chart(data),
            "funnel": revenue.funnel(),
            "top": revenue.top_customers(),
            "currency": ledger.currency(),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(currency: str) -> Iterator[str]:
    writer = csv.writer(_Echo())
    amount = lambda minor: decimal_text(minor, currency)  # noqa: E731
    yield writer.writerow(["section", "key", "series", "value", "currency"])
    for key, value in revenue.kpis().items():
        money = key in ("mrr", "arr", "outstanding", "credit_liability")
        yield writer.writerow(["kpi", key, "", amount(value) if money else value, currency])
    data = revenue.trend()
    for row in data.rows():
        for series, value in zip(data.series, row["values"], strict=True):
            yield writer.writerow(["revenue", row["month"], series, amount(value), currency])
    for stage, count in revenue.funnel():
        yield writer.writerow(["voucher_funnel", stage, "", count, ""])
    for top in revenue.top_customers():
        yield writer.writerow(
            ["top_customer", top["organization__slug"], "", amount(top["revenue"]), currency]
        )


@login_required
@require_GET
def revenue_export(request: HttpRequest) -> StreamingHttpResponse:
    require(request, "billing.read")
    response = StreamingHttpResponse(
        _csv(ledger.currency()), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="revenue.csv"'
    return response
