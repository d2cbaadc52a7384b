"""Issue 10 §5: money and counts are bounded with field errors, never a 500 (and never a ledger
whose sum overflows the database's integer, which made every customer page 500 forever)."""

from __future__ import annotations

import pytest

from billing.models import LedgerEntry, Plan, Voucher

pytestmark = pytest.mark.django_db
HALF_BIGINT = str(2**62)  # fits a 64-bit column; two of them do not


def test_credit_adjustments_are_bounded(cast, client_for):
    operator = client_for(cast["sovereign_operator"])
    for amount in (HALF_BIGINT, HALF_BIGINT, "99999999999999999999999"):
        response = operator.post(
            "/bss/customers/acme/",
            {"direction": "grant", "amount": amount, "reason": "goodwill", "note": "big"},
        )
        assert response.status_code == 400, amount
        assert "at most" in response.context["form"].errors["amount"][0]
    assert not LedgerEntry.objects.filter(organization=cast["acme"]).exists()
    assert operator.get("/bss/customers/").status_code == 200
    assert operator.get("/bss/customers/acme/").status_code == 200


def test_voucher_credit_and_counts_are_bounded(cast, client_for):
    operator = client_for(cast["sovereign_operator"])
    response = operator.post(
        "/bss/vouchers/new/",
        {
            "count": "99999999999",
            "code": "",
            "credit": HALF_BIGINT,
            "reason": "campaign",
            "max_redemptions": "99999999999",
            "is_active": "on",
        },
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert {"count", "credit", "max_redemptions"} <= set(errors), errors
    assert not Voucher.objects.exists()


def test_plan_quotas_are_bounded(cast, client_for):
    operator = client_for(cast["sovereign_operator"])
    plan = Plan.objects.get(code="s")
    response = operator.post(
        f"/bss/plans/{plan.code}/",
        {
            "name": plan.name,
            "cpu_millicores": "99999999999",
            "memory_mib": "1",
            "disk_gib": "1",
            "is_active": "on",
        },
    )
    assert response.status_code == 400
    assert "cpu_millicores" in response.context["form"].errors
    plan.refresh_from_db()
    assert plan.cpu_millicores != 99999999999
