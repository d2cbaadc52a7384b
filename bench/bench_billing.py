"""BSS figures: voucher preview latency, 200 concurrent redemptions, a 10,000-code batch + CSV.

Embedded: `python -m bench.bench_billing` (SQLite: writers are serialised, so the concurrent run
shows the lock cost, not PostgreSQL's). Target figures are for PostgreSQL:
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/catalyst_billing python -m bench.bench_billing`.
Each figure is printed beside a baseline from the same run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from bench.common import (
    median,
    report,
    run_concurrently,
    setup_django,
    throwaway_database,
    timed,
)

PREVIEWS = 300
ORGS = 200
CAP = 50
WORKERS = 40  # concurrent connections (PostgreSQL's default max_connections is 100)
BATCH = 10_000


def plain_view(request: HttpRequest) -> JsonResponse:
    """The baseline: a plain Django view behind the same middleware, no database."""
    return JsonResponse({"status": "valid"})


urlpatterns: list[Any] = []  # filled in main(), after Django is set up


def _bench_preview(client: Any, code: str) -> None:
    body = {"code": code}

    def preview() -> None:
        response = client.post("/api/v1/vouchers/preview", body, content_type="application/json")
        assert response.status_code == 200, response.content

    def page() -> None:
        assert client.get("/redeem/", {"code": code}).status_code == 200

    def plain() -> None:
        assert client.post("/bench/plain", body, content_type="application/json").status_code == 200

    baseline = median(timed(plain, repeat=PREVIEWS, warmup=10))
    report(
        f"POST /api/v1/vouchers/preview, median of {PREVIEWS}",
        median(timed(preview, repeat=PREVIEWS, warmup=10)),
        target=15,
        baseline=baseline,
        baseline_name="plain Django view",
    )
    report(
        f"GET /redeem/?code= page, median of {PREVIEWS}",
        median(timed(page, repeat=PREVIEWS, warmup=10)),
        target=15,
        baseline=baseline,
        baseline_name="plain Django view",
    )


def _bench_redemptions(vendor: str) -> None:
    from django.db import connection, transaction

    from billing import vouchers
    from billing.models import LedgerEntry, Voucher
    from orgs.models import Organization

    orgs = Organization.objects.bulk_create(
        [Organization(slug=f"bench-{i:03d}", display_name=f"Bench {i}") for i in range(ORGS)]
    )
    terms = vouchers.VoucherTerms(credit_minor=3_000, max_redemptions=CAP)
    code = vouchers.issue_vouchers(by=None, terms=terms)[0].code
    plain = vouchers.issue_vouchers(by=None, terms=terms)[0]

    def redeem(org: Any) -> str:
        try:
            vouchers.redeem_voucher(code=code, org=org, by=None)
        except vouchers.VoucherEnded:
            return "ended"
        return "redeemed"

    # SQLite has no FOR UPDATE; its IMMEDIATE transactions take the write lock up front.
    lock = " FOR UPDATE" if vendor == "postgresql" else ""

    def bare(org: Any) -> str:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT redeemed_count, max_redemptions FROM billing_voucher WHERE id = %s" + lock,
                [plain.pk],
            )
            count, cap = cursor.fetchone()
            if count >= cap:
                return "ended"
            cursor.execute(
                "UPDATE billing_voucher SET redeemed_count = redeemed_count + 1 WHERE id = %s",
                [plain.pk],
            )
        return "redeemed"

    base_seconds, base_outcomes = run_concurrently(orgs, bare, workers=WORKERS)
    seconds, outcomes = run_concurrently(orgs, redeem, workers=WORKERS)
    assert outcomes == {"redeemed": CAP, "ended": ORGS - CAP}, outcomes
    assert base_outcomes == outcomes, base_outcomes
    assert Voucher.objects.get(code=code).redeemed_count == CAP
    assert LedgerEntry.objects.filter(reference=f"promo:{code}").balance() == CAP * 3_000
    print(
        f"  {ORGS} redemptions by {ORGS} Organizations, cap {CAP}, {WORKERS} connections ({vendor})"
    )
    report(
        "concurrent redemption run, wall time",
        seconds * 1000,
        target=5000 if vendor == "postgresql" else None,
        baseline=base_seconds * 1000,
        baseline_name="bare SELECT … FOR UPDATE + UPDATE",
    )


def _bench_batch(client: Any) -> None:
    from billing import vouchers

    terms = vouchers.VoucherTerms(credit_minor=5_000, max_redemptions=1, description="bench batch")
    start = time.perf_counter()
    issued = vouchers.issue_vouchers(by=None, terms=terms, count=BATCH)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    response = client.get("/bss/vouchers/export.csv", {"q": issued[0].batch})
    size = sum(len(chunk) for chunk in response.streaming_content)
    exported = time.perf_counter() - start
    report(f"batch of {BATCH:,} codes generated and stored", generated * 1000)
    report(f"CSV export of the batch ({size / 1e6:.1f} MB, streamed)", exported * 1000)
    report("batch + export", (generated + exported) * 1000, target=10_000)


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from orgs.models import Sovereign
    from rbac import services as rbac_services

    urlpatterns[:] = [path("bench/plain", plain_view), path("", include("catalyst_portal.urls"))]
    settings.ROOT_URLCONF = __name__
    # the rate limits stay on (their cache round trips are part of the cost) but never trip
    settings.VOUCHER_PREVIEW_LIMIT_PER_IP = 10**9
    settings.VOUCHER_PREVIEW_LIMIT_PER_USER = 10**9
    if connection.vendor == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="bench-billing-"))
        connection.settings_dict["TEST"]["NAME"] = str(tmp / "bench.sqlite3")
    with throwaway_database():
        from billing import vouchers

        Sovereign.objects.create(fqdn="bench.local", currency="OMR", tax_rate_bp=500)
        code = vouchers.issue_vouchers(
            by=None, terms=vouchers.VoucherTerms(credit_minor=10_000, max_redemptions=0)
        )[0].code
        _bench_preview(Client(), code)
        _bench_redemptions(connection.vendor)
        operator = get_user_model().objects.create_user("bench-op", "op@example.test", "x" * 12)
        rbac_services.assign(
            by=None, user=operator, tier="owner", scopes=rbac_services.GLOBAL_SCOPE
        )
        client = Client()
        client.force_login(operator)
        _bench_batch(client)


if __name__ == "__main__":
    main()
