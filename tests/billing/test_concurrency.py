"""Concurrent redemptions on PostgreSQL (row lock + unique constraint): never over the cap, never twice.

Run with DATABASE_URL=postgres://…; skipped on SQLite, which serialises writers anyway.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from billing import vouchers
from billing.models import LedgerEntry, Redemption, Voucher
from orgs.models import Organization
from rbac import services as rbac_services
from tests.conftest import make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKERS = 40  # below PostgreSQL's default max_connections (100), which other clients share


@pytest.fixture(autouse=True)
def _postgres_only(settings: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    settings.VOUCHER_REDEEM_LIMIT_PER_USER = 0


def _operator_cookies() -> Any:
    user = make_user("bss")
    rbac_services.assign(by=None, user=user, tier="owner", scopes=rbac_services.GLOBAL_SCOPE)
    client = Client()
    client.force_login(user)
    return client.cookies


def _redeem(cookies: Any, code: str, slug: str, barrier: threading.Barrier | None = None) -> int:
    client = Client()
    client.cookies = cookies
    try:
        if barrier is not None:
            barrier.wait(timeout=30)
        response = client.post(
            "/api/v1/vouchers/redeem",
            {"code": code, "organization": slug},
            content_type="application/json",
        )
        return response.status_code
    finally:
        connections.close_all()


def _orgs(count: int) -> list[str]:
    slugs = [f"org-{i:03d}" for i in range(count)]
    Organization.objects.bulk_create([Organization(slug=s, display_name=s) for s in slugs])
    return slugs


def test_200_concurrent_redemptions_of_a_50_cap_code(sovereign):
    cookies = _operator_cookies()
    slugs = _orgs(200)
    code = vouchers.issue_vouchers(
        by=None, terms=vouchers.VoucherTerms(credit_minor=3_000, max_redemptions=50)
    )[0].code
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        statuses = list(pool.map(lambda slug: _redeem(cookies, code, slug), slugs))
    assert Counter(statuses) == {201: 50, 410: 150}
    assert Voucher.objects.get(code=code).redeemed_count == 50
    assert Redemption.objects.count() == 50
    assert LedgerEntry.objects.filter(reference=f"promo:{code}").count() == 50
    assert LedgerEntry.objects.balance() == 50 * 3_000
    credited = set(Redemption.objects.values_list("organization__slug", flat=True))
    assert credited == set(LedgerEntry.objects.values_list("organization__slug", flat=True))


def test_same_org_redeeming_twice_at_once_succeeds_once(sovereign):
    cookies = _operator_cookies()
    (slug,) = _orgs(1)
    for round_ in range(10):
        code = vouchers.issue_vouchers(
            by=None, terms=vouchers.VoucherTerms(credit_minor=1_000, max_redemptions=0)
        )[0].code
        barrier = threading.Barrier(2)
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(_redeem, cookies, code, slug, barrier) for _ in range(2)]
            statuses = sorted(f.result() for f in futures)
        assert statuses == [201, 409], round_
        assert Redemption.objects.filter(voucher__code=code).count() == 1
    assert LedgerEntry.objects.balance() == 10 * 1_000
