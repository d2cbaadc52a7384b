"""Console → BSS → Revenue: the KPI strip (worked example), the voucher funnel, the chart readable
as a table, the CSV, refused to tenants; and a generated month of 500 Organizations on which the
ledger, the invoices and the revenue page agree (property test)."""

from __future__ import annotations

import csv
import io
import random
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import checkout, invoices, ledger, revenue, runs, vouchers
from billing.models import (
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    Subscription,
    SubscriptionStatus,
    UsageRecord,
)
from billing.money import format_money
from orgs.models import Organization, OrgState
from tests.billing.helpers import order_plan
from tests.billing.test_invoice_run import PERIOD, flexi, use

pytestmark = pytest.mark.django_db


def kpi(html: str, name: str) -> str:
    found = re.search(rf'id="kpi-{name}">([^<]*)<', html)
    assert found, name
    return found[1]


def test_the_kpi_strip_worked_example(
    cast: dict[str, Any], operator_client: Any, on_commit: Any
) -> None:
    acme, globex = cast["acme"], cast["globex"]
    ledger.append(org=acme, amount_minor=100_000, reason="promo", reference="promo:A")
    order_plan(by=cast["owner"], org=acme, plan_code="m")  # 29.000 a month, paid from credit
    unpaid = order_plan(by=cast["member_b"], org=globex, plan_code="s")  # awaits 15.750
    use(flexi(acme), "cpu-core-hours", "100")  # October usage: 1.260 to pay, covered by credit
    with on_commit():
        runs.run(PERIOD)
    html = operator_client.get("/bss/revenue/").content.decode()
    assert kpi(html, "mrr") == "OMR 29.000" and kpi(html, "arr") == "OMR 348.000"
    assert (kpi(html, "customers"), kpi(html, "active"), kpi(html, "new")) == ("1", "1", "1")
    assert kpi(html, "churned") == "0"
    assert kpi(html, "outstanding") == format_money(unpaid.due_minor, "OMR") == "OMR 15.750"
    # 100.000 − 30.450 (M with tax) − 1.260 (usage) = 68.290 of credit still owed in service
    assert kpi(html, "credit") == "OMR 68.290"

    # the subscription ends this month: churned, MRR falls
    sub = Subscription.objects.get(organization=acme, status=SubscriptionStatus.ACTIVE)
    Subscription.objects.filter(pk=sub.pk).update(
        status=SubscriptionStatus.ENDED, ended_at=timezone.now()
    )
    html = operator_client.get("/bss/revenue/").content.decode()
    assert (kpi(html, "mrr"), kpi(html, "churned"), kpi(html, "customers")) == (
        "OMR 0.000",
        "1",
        "0",
    )


def test_revenue_trend_table_chart_funnel_top_and_csv(
    cast: dict[str, Any], operator_client: Any, client_for: Any, on_commit: Any
) -> None:
    acme, globex = cast["acme"], cast["globex"]
    voucher = vouchers.issue_vouchers(
        by=cast["sovereign_operator"], terms=vouchers.VoucherTerms(credit_minor=50_000), count=2
    )[0]
    client_for(None).get("/redeem/", {"code": voucher.code})  # previewed
    vouchers.redeem_voucher(code=voucher.code, org=acme, by=cast["owner"])
    order = order_plan(by=cast["owner"], org=acme, plan_code="l")  # 57.750 > 50.000: 7.750 due
    checkout.record_payment(by=cast["sovereign_operator"], order=order, reference="TR")
    order_plan(by=cast["member_b"], org=globex, plan_code="s")
    page = operator_client.get("/bss/revenue/")
    html = page.content.decode()
    month = f"{timezone.localtime():%Y-%m}"
    row = re.search(rf"<tr><th scope=\"row\">{month}</th>(.*?)</tr>", html)
    assert row and "OMR 55.000" in row[1] and "OMR 15.000" in row[1] and "OMR 70.000" in row[1]
    assert html.count("<rect x=") >= 2 and 'role="img"' in html  # the SVG, stacked by plan
    funnel = dict(re.findall(r'<tr><th scope="row">([^<]+)</th><td>(\d+)</td></tr>', html))
    assert funnel == {"Issued": "2", "Previewed": "1", "Redeemed": "1", "Converted to paid": "1"}
    top = re.search(r'id="top-customers">.*?</table>', html, re.S)[0]
    assert top.index("Acme") < top.index("Globex")

    export = operator_client.get("/bss/revenue/export.csv")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert ["revenue", month, "l", "55.000", "OMR"] in rows
    assert ["kpi", "active_subscriptions", "", "1", "OMR"] in rows
    assert ["voucher_funnel", "Converted to paid", "", "1", ""] in rows
    for user in ("owner", "admin", "viewer"):
        assert client_for(cast[user]).get("/bss/revenue/").status_code == 404
        assert client_for(cast[user]).get("/bss/revenue/export.csv").status_code == 404


def _generate_month(rng: random.Random, size: int) -> dict[str, Any]:
    """`size` Organizations: subscriptions (some ended), credit, October usage."""
    tz = timezone.get_default_timezone()
    now = timezone.now()
    orgs = Organization.objects.bulk_create(
        Organization(
            slug=f"gen-{i:04d}",
            display_name=f"Generated {i}",
            plan_code=rng.choice(["flexi", "s", "m"]),
            state=OrgState.READY,
        )
        for i in range(size)
    )
    orgs = list(Organization.objects.filter(slug__startswith="gen-").order_by("pk"))
    subs, grants, records = [], {}, []
    for org in orgs:
        if rng.random() < 0.8:
            active = rng.random() < 0.9
            subs.append(
                Subscription(
                    organization=org,
                    plan_code=org.plan_code,
                    recurring_minor=rng.choice([0, 15_000, 29_000]) + rng.randrange(0, 5_000),
                    status=SubscriptionStatus.ACTIVE if active else SubscriptionStatus.ENDED,
                    period_start=now - timedelta(days=3),
                    period_end=now + timedelta(days=27),
                    ended_at=None if active else now,
                )
            )
        if rng.random() < 0.5:
            grants[org.pk] = rng.randrange(1, 40_000)
        for n in range(rng.randrange(0, 4)):
            start = timezone.datetime(2026, 10, rng.randrange(1, 29), n, tzinfo=tz)
            records.append(
                UsageRecord(
                    organization=org,
                    source="gen",
                    resource=f"{org.slug}/{n}",
                    kind="compute",
                    sku=rng.choice(["cpu-core-hours", "egress-gib", "memory-gib-hours"]),
                    quantity=Decimal(rng.randrange(0, 3_000_000)) / 1000,
                    unit="u",
                    window_start=start,
                    window_end=start + timedelta(hours=1),
                )
            )
    Subscription.objects.bulk_create(subs)
    LedgerEntry.objects.bulk_create(
        LedgerEntry(organization_id=pk, amount_minor=amount, currency="OMR", reason="promo")
        for pk, amount in grants.items()
    )
    UsageRecord.objects.bulk_create(records)
    return {"orgs": orgs, "subs": subs, "grants": grants}


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_generated_month_of_500_organizations_agrees(cast, operator_client, seed):
    rng = random.Random(seed)
    with transaction.atomic():
        month = _generate_month(rng, 500)
        runs.run(PERIOD)
        issued = list(Invoice.objects.filter(period=PERIOD).select_related("order"))
        for invoice in issued:  # customers pay some, operators void some
            roll = rng.random()
            if invoice.status == InvoiceStatus.ISSUED and roll < 0.5:
                checkout.record_payment(by=None, order=invoice.order, reference=f"T{invoice.pk}")
            elif invoice.status == InvoiceStatus.ISSUED and roll < 0.6:
                invoices.void(by=None, invoice=invoice, reason="generated")

        invoices_now = list(Invoice.objects.filter(period=PERIOD))
        live = [i for i in invoices_now if i.status != InvoiceStatus.VOID]
        payments = LedgerEntry.objects.filter(reason="payment").balance()
        kpis = revenue.kpis()
        # sum of invoice totals = payments + outstanding
        assert sum(i.total_minor for i in live) == payments + kpis["outstanding"]
        assert kpis["outstanding"] == sum(
            i.total_minor for i in live if i.status == InvoiceStatus.ISSUED
        )
        # MRR = sum of the active subscriptions' prices
        assert kpis["mrr"] == sum(
            s.recurring_minor for s in month["subs"] if s.status == SubscriptionStatus.ACTIVE
        )
        # each ledger: credit granted, less the credit invoices that stand applied
        applied: dict[int, int] = {}
        for i in live:
            applied[i.organization_id] = applied.get(i.organization_id, 0) + i.credit_applied_minor
        balances = {
            org.pk: month["grants"].get(org.pk, 0) - applied.get(org.pk, 0) for org in month["orgs"]
        }
        for org in month["orgs"]:
            assert ledger.balance(org) == balances[org.pk]
        assert kpis["credit_liability"] == sum(b for b in balances.values() if b > 0)
        assert revenue.credit_liability_from_ledger() == kpis["credit_liability"]
        # the page shows the same figures; its usage revenue is the live invoices' subtotals
        html = operator_client.get("/bss/revenue/").content.decode()
        assert kpi(html, "mrr") == format_money(kpis["mrr"], "OMR")
        assert kpi(html, "outstanding") == format_money(kpis["outstanding"], "OMR")
        trend = revenue.trend()
        this_month = f"{timezone.localtime():%Y-%m}"
        assert trend.cells.get((this_month, "usage"), 0) == sum(i.subtotal_minor for i in live)
        transaction.set_rollback(True)
