"""Issue 11's money defects, each through HTTP: every charge is a quote the customer saw, once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone

from billing import ledger, pricing, vouchers
from billing.models import Invoice, LedgerEntry, Order, Plan, Redemption, Subscription
from core.models import AuditEvent
from orgs.models import Organization
from tests.billing.helpers import quote_form, through_quote

pytestmark = pytest.mark.django_db

CODE = "TRUSTED-2026-ABCDEF"
WIZARD = {"slug": "freshco", "display_name": "Fresh Co", "plan": "l", "region": "hz-fsn-rtz-prod"}


def give_plan(client: Any, org: Organization, plan: str, credit: int) -> None:
    """`org` orders `plan` through its billing page and pays it from credit (`credit` granted)."""
    ledger.append(org=org, amount_minor=credit, reason="test")
    response = client.post(f"/billing/{org.slug}/plan/", {"plan": plan})
    if response["Location"].startswith("/quotes/"):
        through_quote(client, response)
    org.refresh_from_db()
    assert org.plan_code == plan


# --- defect 1: ordering the current plan charges again -----------------------------------------


def test_reordering_the_current_plan_is_a_no_op(cast, client_for):
    acme = cast["acme"]
    client = client_for(cast["owner"])
    give_plan(client, acme, "s", 100_000)
    orders, balance = Order.objects.count(), ledger.balance(acme)
    page = client.get("/billing/acme/")
    assert re.search(r'<option value="s" selected>', page.content.decode())  # the default choice
    response = client.post("/billing/acme/plan/", {"plan": "s"})
    assert response.status_code == 302 and response["Location"] == "/billing/acme/"
    shown = client.get("/billing/acme/").content.decode()
    assert "already on plan S" in shown
    assert Order.objects.count() == orders and ledger.balance(acme) == balance
    assert Subscription.objects.get(organization=acme, status="active").plan_code == "s"
    assert client_for(cast["viewer"]).post("/billing/acme/plan/", {"plan": "s"}).status_code == 403


# --- defect 2: credit ignored, plan set while unpaid ------------------------------------------


def test_partial_credit_is_applied_first_and_the_plan_waits_for_payment(
    cast, client_for, operator_client, on_commit
):
    vouchers.issue_vouchers(by=None, terms=vouchers.VoucherTerms(credit_minor=30_000), code=CODE)
    client = client_for(cast["outsider"])
    with on_commit():
        response = through_quote(client, client.post("/checkout/", {**WIZARD, "code": CODE}))
    assert response.status_code == 302
    org = Organization.objects.get(slug="freshco")
    order = Order.objects.get(organization=org)
    assert order.total_minor == 57_750 and order.credit_applied_minor == 30_000
    assert order.due_minor == 27_750 and order.status == "awaiting_payment"
    assert Invoice.objects.get(order=order).total_minor == 27_750
    assert org.plan_code == "" and not Subscription.objects.filter(organization=org).exists()
    assert ledger.balance(org) == 0  # the 30.000 is held for this order
    operator_client.post(f"/bss/orders/{order.pk}/pay/", {"reference": "BANK-7"})
    org.refresh_from_db()
    assert org.plan_code == "l" and ledger.balance(org) == 0
    assert Subscription.objects.get(organization=org, status="active").plan_code == "l"
    payment = LedgerEntry.objects.get(organization=org, reason="payment")
    assert payment.amount_minor == 27_750


# --- defect 3: the price at submit, not the price shown ----------------------------------------


def test_a_price_change_after_the_quote_is_refused_with_the_new_quote(cast, client_for):
    acme = cast["acme"]
    client = client_for(cast["owner"])
    give_plan(client, acme, "s", 200_000)
    response = client.post("/billing/acme/plan/", {"plan": "m"})
    assert response.status_code == 302 and response["Location"].startswith("/quotes/")
    page = client.get(response["Location"])
    action, token = quote_form(page)
    balance = ledger.balance(acme)
    # an operator raises M's price, effective now, while the customer reads the quote
    pricing.set_price(
        by=cast["sovereign_operator"],
        plan=Plan.objects.get(code="m"),
        amount_minor=35_000,
        effective_from=timezone.now(),
    )
    refused = client.post(action, {"quote": token, "payment": "invoice"})
    assert refused.status_code == 409
    assert "Prices changed, review the new quote" in refused.content.decode()
    assert "OMR 35.000" in refused.content.decode()  # the new quote is on the page
    assert not Order.objects.filter(organization=acme, plan_code="m").exists()
    assert ledger.balance(acme) == balance and Organization.objects.get(pk=acme.pk).plan_code == "s"
    # the new quote is the one that can be confirmed
    action, new_token = quote_form(refused)
    assert new_token != token
    done = client.post(action, {"quote": new_token, "payment": "invoice"})
    assert done.status_code == 302 and Organization.objects.get(pk=acme.pk).plan_code == "m"
    # someone else cannot confirm another Organization's quote
    assert client_for(cast["member_b"]).post(action, {"quote": new_token}).status_code == 404


# --- defect 4: tax and credit seen only after the order ----------------------------------------


def test_checkout_shows_the_quote_before_anything_is_charged(cast, client_for):
    vouchers.issue_vouchers(by=None, terms=vouchers.VoucherTerms(credit_minor=10_000), code=CODE)
    client = client_for(cast["outsider"])
    response = client.post("/checkout/", {**WIZARD, "plan": "s", "code": CODE})
    assert response.status_code == 302 and response["Location"].startswith("/quotes/")
    # nothing is written before the customer confirms
    assert not Organization.objects.filter(slug="freshco").exists()
    assert not Order.objects.exists() and not Redemption.objects.exists()
    page = client.get(response["Location"]).content.decode()
    for text in (
        "OMR 15.000",  # plan S
        "Tax (5 %)",
        "OMR 0.750",
        "OMR 15.750",  # total
        "Credit applied",
        "OMR -10.000",
        "Due now",
        "OMR 5.750",
        "Due each month",
    ):
        assert text in page, text
    # a quote belongs to the one who asked for it
    assert client_for(cast["owner"]).get(response["Location"]).status_code == 404


# --- defect 5: a previewed code sticks ---------------------------------------------------------


def test_a_previewed_code_is_offered_never_applied_silently(cast, client_for, on_commit):
    vouchers.issue_vouchers(by=None, terms=vouchers.VoucherTerms(credit_minor=10_000), code=CODE)
    client = client_for(cast["outsider"])
    assert client.get("/redeem/", {"code": CODE}).status_code == 200
    wizard = client.get("/checkout/")
    html = wizard.content.decode()
    assert wizard.context["form"]["code"].value() in ("", None)
    assert f'value="{CODE}"' not in html
    assert f"/checkout/?code={CODE}" in html  # offered as an explicit choice
    with on_commit():
        response = through_quote(client, client.post("/checkout/", {**WIZARD, "plan": "s"}))
    assert response.status_code == 302
    org = Organization.objects.get(slug="freshco")
    assert not Redemption.objects.exists() and not LedgerEntry.objects.filter(organization=org)
    assert Order.objects.get(organization=org).credit_applied_minor == 0


def test_the_redeem_offer_skips_organizations_that_used_the_code(cast, client_for):
    vouchers.issue_vouchers(
        by=None, terms=vouchers.VoucherTerms(credit_minor=10_000, max_redemptions=5), code=CODE
    )
    vouchers.redeem_voucher(code=CODE, org=cast["acme"], by=cast["owner"])
    page = client_for(cast["owner"]).get("/redeem/", {"code": CODE})
    html = page.content.decode()
    assert page.status_code == 200 and 'value="acme"' not in html
    assert "already redeemed" in html
    before = AuditEvent.objects.count()
    other = client_for(cast["member_b"]).get("/redeem/", {"code": CODE})
    assert 'value="globex"' in other.content.decode()
    assert AuditEvent.objects.count() == before
