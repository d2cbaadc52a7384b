"""BSS II figures: usage ingestion through the API, the monthly invoice run for 5,000
Organizations, the revenue page over 1,000,000 ledger entries — each beside a baseline measured in
the same run.

PostgreSQL (the targets are for it):
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/catalyst_bss python -m bench bench_bss`.
Embedded (SQLite): `python -m bench bench_bss`.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import median, report, setup_django, throwaway_database, timed, timed_cpu

ORGS = 5_000
LEDGER_ROWS = 1_000_000
BATCHES = 20
BATCH = 1_000
PERIOD = "2026-10"
PAGE_REPEAT = 15


def _orgs(count: int) -> list[Any]:
    from orgs.models import Organization, OrgState

    rng = random.Random(7)
    Organization.objects.bulk_create(
        Organization(
            slug=f"b-{i:05d}",
            display_name=f"Bench {i}",
            plan_code=rng.choice(["flexi", "s", "m"]),
            state=OrgState.READY,
        )
        for i in range(count)
    )
    return list(Organization.objects.filter(slug__startswith="b-").order_by("pk"))


def _records(orgs: list[Any], start: int, count: int, *, as_json: bool) -> list[Any]:
    """`count` usage records spread over the Organizations, one hour each in October."""
    out = []
    for n in range(start, start + count):
        org = orgs[n % len(orgs)]
        hour = datetime(2026, 10, 1 + (n // len(orgs)) % 28, n % 24, tzinfo=_tz())
        fields = {
            "source": "bench",
            "resource": f"pod/{n}",
            "kind": "compute",
            "sku": "cpu-core-hours" if n % 3 else "egress-gib",
            "quantity": "1.25",
            "unit": "core-hour",
            "window_start": hour,
            "window_end": hour + timedelta(hours=1),
            "region": "fsn",
            "labels": {"env": "prod"},
        }
        if as_json:
            fields = fields | {
                "organization": org.slug,
                "window_start": hour.isoformat(),
                "window_end": (hour + timedelta(hours=1)).isoformat(),
            }
        else:
            fields = fields | {"organization": org, "quantity": Decimal("1.25")}
        out.append(fields)
    return out


def _tz() -> Any:
    from django.utils import timezone

    return timezone.get_default_timezone()


def bench_ingestion(orgs: list[Any]) -> None:
    from django.test import Client

    from accounts import services as account_services
    from billing.models import UsageRecord
    from rbac import services as rbac_services
    from tests.conftest import make_user

    meter = make_user("bench-meter")
    rbac_services.assign(by=None, user=meter, tier="operator", scopes=rbac_services.GLOBAL_SCOPE)
    _, raw = account_services.create_api_token(user=meter, name="bench", days=30)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    base = 10_000_000

    def bulk_insert() -> float:  # the baseline: the same rows through one bulk INSERT each
        nonlocal base
        start = time.perf_counter()
        for b in range(BATCHES):
            rows = _records(orgs, base + b * BATCH, BATCH, as_json=False)
            UsageRecord.objects.bulk_create(UsageRecord(**row) for row in rows)
        base += BATCHES * BATCH
        return time.perf_counter() - start

    bodies = [{"records": _records(orgs, b * BATCH, BATCH, as_json=True)} for b in range(BATCHES)]
    start, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        response = client.post("/api/v1/usage", body, content_type="application/json")
        assert response.status_code == 200 and response.json()["recorded"] == BATCH, (
            response.content
        )
    api_seconds, api_cpu = time.perf_counter() - start, time.process_time() - cpu
    again = time.perf_counter()
    response = client.post("/api/v1/usage", bodies[0], content_type="application/json")
    assert response.json()["duplicates"] == BATCH
    dup_ms = (time.perf_counter() - again) * 1000
    bulk_seconds = bulk_insert()
    total = BATCHES * BATCH
    report(
        f"usage ingestion, POST /api/v1/usage, {BATCHES} batches of {BATCH}",
        total / api_seconds,
        unit="records/s",
        baseline=total / bulk_seconds,
        baseline_name="bulk_create of the same rows",
    )
    print(
        f"  (target ≥ 5000 records/s: {'OK' if total / api_seconds >= 5000 else 'MISSED'}; "
        f"{total / api_cpu:.0f} records per CPU-second of this process)"
    )
    report(f"a resent batch of {BATCH} (all duplicates)", dup_ms)


def bench_invoice_run(orgs: list[Any]) -> None:
    from billing import runs
    from billing.models import Invoice, InvoiceLine, InvoiceStatus, LedgerEntry

    rng = random.Random(11)
    LedgerEntry.objects.bulk_create(
        LedgerEntry(organization=org, amount_minor=rng.randrange(1, 50_000), reason="promo")
        for org in orgs[::3]
    )
    start = time.perf_counter()
    cpu = time.process_time()
    result = runs.run(PERIOD)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    assert result.issued == len(orgs), result
    # the baseline: writing the same number of invoices and lines in bulk, nothing computed
    start = time.perf_counter()
    made = Invoice.objects.bulk_create(
        Invoice(
            organization=org,
            period="2026-09",
            currency="OMR",
            subtotal_minor=1,
            total_minor=1,
            status=InvoiceStatus.DRAFT,
            issued_at=None,
        )
        for org in orgs
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=inv,
            position=p,
            kind="usage",
            code="x",
            description="x",
            quantity=1,
            amount_minor=1,
        )
        for inv in made
        for p in (1, 2)
    )
    baseline = time.perf_counter() - start
    report(
        f"invoice run for {len(orgs)} Organizations (rate, draft, issue with credit)",
        seconds,
        unit="s",
        target=60,
        baseline=baseline,
        baseline_name="bulk insert of as many invoices and lines",
    )
    print(f"  (CPU of this process: {cpu_seconds:.1f} s)")
    again = time.perf_counter()
    second = runs.run(PERIOD)
    assert second.drafted == 0 and second.issued == 0
    report("the same run again (changes nothing)", time.perf_counter() - again, unit="s")


def _fill_ledger(orgs: list[Any], rows: int) -> None:
    from django.db import connection

    from billing.models import LedgerEntry

    have = LedgerEntry.objects.count()
    need = rows - have
    if need <= 0:
        return
    ids = [org.pk for org in orgs]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO billing_ledgerentry (organization_id, amount_minor, currency, reason,"
                " reference, note, created_at) SELECT (%s::bigint[])[1 + (g %% %s)],"
                " CASE WHEN g %% 4 = 0 THEN -(g %% 997 + 1) ELSE g %% 1999 + 1 END, 'OMR',"
                " 'bench', '', '', now() - (g %% 365) * interval '1 day'"
                " FROM generate_series(1, %s) AS g",
                [ids, len(ids), need],
            )
        return
    chunk = 20_000
    for start in range(0, need, chunk):
        LedgerEntry.objects.bulk_create(
            LedgerEntry(
                organization_id=ids[g % len(ids)],
                amount_minor=-(g % 997 + 1) if g % 4 == 0 else g % 1999 + 1,
                currency="OMR",
                reason="bench",
            )
            for g in range(start + 1, min(start + chunk, need) + 1)
        )


def bench_revenue(orgs: list[Any]) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from billing import revenue
    from billing.models import LedgerEntry, Subscription
    from rbac import services as rbac_services

    now = timezone.now()
    Subscription.objects.bulk_create(
        Subscription(
            organization=org,
            plan_code=org.plan_code,
            recurring_minor=15_000 + i % 7 * 1_000,
            period_start=now - timedelta(days=5),
            period_end=now + timedelta(days=25),
            started_at=now - timedelta(days=i % 400),
        )
        for i, org in enumerate(orgs)
    )
    _fill_ledger(orgs, LEDGER_ROWS)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    rows = LedgerEntry.objects.count()
    operator = get_user_model().objects.create_user("bench-op", "op@example.test", "x" * 12)
    rbac_services.assign(by=None, user=operator, tier="owner", scopes=rbac_services.GLOBAL_SCOPE)
    client = Client()
    client.force_login(operator)

    def page() -> None:
        assert client.get("/bss/revenue/").status_code == 200

    assert revenue.credit_liability() == revenue.credit_liability_from_ledger()
    baseline = median(timed(revenue.credit_liability_from_ledger, repeat=PAGE_REPEAT))
    wall = median(timed(page, repeat=PAGE_REPEAT))
    cpu = median(timed_cpu(page, repeat=5, warmup=0))
    report(
        f"revenue page over {rows:,} ledger entries, {len(orgs)} subscriptions, median",
        wall,
        target=200,
        baseline=baseline,
        baseline_name="raw SQL aggregate (positive balances over the ledger)",
    )
    print(f"  (CPU of this process per page: {cpu:.1f} ms; the rest is the database)")


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.db import connection

    from orgs.models import Sovereign

    settings.BILLING_RUN_ISSUE = True
    # outbox rows (e-mails, events) are written inside the measured time; handing them to the
    # broker and the e-mail/PDF work are the worker's, outside it
    from core import outbox

    outbox.send = lambda item_id, task_name: True  # type: ignore[assignment]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    if connection.vendor == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="bench-bss-"))
        connection.settings_dict["TEST"]["NAME"] = str(tmp / "bench.sqlite3")
    print(f"BSS II ({connection.vendor})")
    with throwaway_database():
        Sovereign.objects.create(fqdn="bench.local", currency="OMR", tax_rate_bp=500)
        from importlib import import_module

        from django.apps import apps

        import_module("billing.migrations.0004_invoices_usage_and_billing_runs").seed_usage_prices(
            apps, None
        )
        orgs = _orgs(ORGS)
        bench_ingestion(orgs)
        bench_invoice_run(orgs)
        bench_revenue(orgs)


if __name__ == "__main__":
    main()
