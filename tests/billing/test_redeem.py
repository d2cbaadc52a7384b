"""The public redeem page and preview API: states, uniform answers, rate limits, existing customers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from billing import vouchers
from billing.models import LedgerEntry, Redemption, Voucher
from core.models import AuditEvent

pytestmark = pytest.mark.django_db

CODE = "WELCOME-2026-ABCDEF"


def make(credit=10_000, code=CODE, **terms):
    return vouchers.issue_vouchers(
        by=None, terms=vouchers.VoucherTerms(credit_minor=credit, **terms), code=code
    )[0]


def preview(client, code):
    return client.post("/api/v1/vouchers/preview", {"code": code}, content_type="application/json")


def test_missing_code_shows_the_entry_form(sovereign):
    page = Client().get("/redeem/")
    assert page.status_code == 200 and b'name="code"' in page.content
    assert b"<script" not in page.content.split(b"<main")[1]  # works without JavaScript


def test_unknown_and_revoked_get_the_same_404(sovereign):
    voucher = make()
    vouchers.revoke_voucher(by=None, voucher=voucher)
    unknown = Client().get("/redeem/", {"code": "NOPE-NOPE-NOPE-1234"})
    revoked = Client().get("/redeem/", {"code": CODE})
    assert unknown.status_code == revoked.status_code == 404
    assert b"This code is not valid" in unknown.content
    strip = lambda r: r.content.replace(b"NOPE-NOPE-NOPE-1234", b"").replace(CODE.encode(), b"")  # noqa: E731
    assert (
        strip(unknown).split(b'name="csrfmiddlewaretoken"')[0]
        == strip(revoked).split(b'name="csrfmiddlewaretoken"')[0]
    )
    api_unknown, api_revoked = preview(Client(), "NOPE-NOPE-NOPE-1234"), preview(Client(), CODE)
    assert api_unknown.status_code == api_revoked.status_code == 404
    assert (
        api_unknown.json()
        == api_revoked.json()
        == {"errors": {"code": ["This code is not valid."]}}
    )


@pytest.mark.parametrize("how", ["inactive", "expired", "exhausted", "not_yet"])
def test_ended_vouchers_answer_410_with_the_credit_and_no_counter(cast, how):
    now = timezone.now()
    terms = {
        "inactive": {"is_active": False},
        "expired": {"valid_from": now - timedelta(days=2), "valid_until": now - timedelta(days=1)},
        "exhausted": {"max_redemptions": 1},
        "not_yet": {"valid_from": now + timedelta(days=1)},
    }[how]
    make(credit=7_500, **terms)
    if how == "exhausted":
        vouchers.redeem_voucher(code=CODE, org=cast["acme"], by=None)
    page = Client().get("/redeem/", {"code": CODE})
    assert page.status_code == 410
    assert b"OMR 7.500" in page.content and b"can no longer be redeemed" in page.content
    api = preview(Client(), CODE)
    assert api.status_code == 410 and api.json()["credit"] == "OMR 7.500"
    assert api.json()["errors"] == {"code": ["This voucher can no longer be redeemed."]}
    assert not {"max_redemptions", "redeemed_count", "remaining"} & set(api.json())


def test_preview_is_rate_limited_per_ip_without_revealing_why(sovereign, settings):
    settings.VOUCHER_PREVIEW_LIMIT_PER_IP = 3
    make()
    client = Client()
    assert [preview(client, CODE).status_code for _ in range(3)] == [200, 200, 200]
    limited = preview(client, CODE)
    assert limited.status_code == 429 and "credit" not in limited.json()
    assert client.get("/redeem/", {"code": CODE}).status_code == 429
    # another address is not affected
    assert Client(REMOTE_ADDR="10.0.0.9").get("/redeem/", {"code": CODE}).status_code == 200


def test_preview_is_rate_limited_per_account(cast, client_for, settings):
    settings.VOUCHER_PREVIEW_LIMIT_PER_USER = 2
    settings.BILLING_RATE_WINDOW_SECONDS = 3600  # fixed windows: no minute boundary mid-test
    make()
    statuses = [
        client_for(cast["owner"])
        .get("/redeem/", {"code": CODE}, REMOTE_ADDR=f"10.0.0.{i}")
        .status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_existing_customer_redeems_into_an_org_they_manage(cast, client_for):
    make(credit=5_000, max_redemptions=0)
    owner = client_for(cast["owner"])
    page = owner.get("/redeem/", {"code": CODE.lower()})
    assert page.status_code == 200 and b"Redeem into this Organization" in page.content
    assert b'value="acme"' in page.content and b'value="globex"' not in page.content
    response = owner.post("/redeem/", {"code": CODE, "organization": "acme"})
    assert response.status_code == 302 and response["Location"] == "/billing/acme/"
    entry = LedgerEntry.objects.get(organization=cast["acme"])
    assert entry.amount_minor == 5_000 and entry.reference == f"promo:{CODE}"
    assert AuditEvent.objects.filter(action="voucher.redeem", org_slug="acme").count() == 1
    # once per Organization
    again = owner.post("/redeem/", {"code": CODE, "organization": "acme"})
    assert again.status_code == 409 and b"already redeemed for acme" in again.content
    assert Redemption.objects.count() == 1 and Voucher.objects.get().redeemed_count == 1


def test_redeem_refuses_orgs_the_user_cannot_manage(cast, client_for):
    make()
    for who, slug in [("viewer", "acme"), ("developer", "acme"), ("owner", "globex")]:
        response = client_for(cast[who]).post("/redeem/", {"code": CODE, "organization": slug})
        assert response.status_code == 400, who
    api = client_for(cast["viewer"]).post(
        "/api/v1/vouchers/redeem",
        {"code": CODE, "organization": "acme"},
        content_type="application/json",
    )
    assert api.status_code == 403
    assert not Redemption.objects.exists() and not LedgerEntry.objects.exists()


def test_redeem_api(cast, client_for):
    make(credit=2_500)
    client = client_for(cast["admin"])
    ok = client.post(
        "/api/v1/vouchers/redeem",
        {"code": CODE.lower(), "organization": "acme"},
        content_type="application/json",
    )
    assert ok.status_code == 201 and ok.json()["balance_minor"] == 2_500
    ended = client_for(cast["member_b"]).post(
        "/api/v1/vouchers/redeem",
        {"code": CODE, "organization": "globex"},
        content_type="application/json",
    )
    assert ended.status_code == 410
    unknown = client.post(
        "/api/v1/vouchers/redeem",
        {"code": "X" * 20, "organization": "acme"},
        content_type="application/json",
    )
    assert unknown.status_code == 404
    assert Client().post(
        "/api/v1/vouchers/redeem",
        {"code": CODE, "organization": "acme"},
        content_type="application/json",
    ).status_code in (401, 403)


def test_plan_restricted_voucher(cast):
    make(plan_code="l", max_redemptions=0)
    with pytest.raises(vouchers.ValidationError) as exc:
        vouchers.redeem_voucher(code=CODE, org=cast["acme"], by=None)
    assert "for the l plan only" in str(exc.value)
    assert not Redemption.objects.exists()
