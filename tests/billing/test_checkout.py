"""Quotes, the price book, checkout paid by credit or awaiting payment, manual payment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from billing import pricing, vouchers
from billing.models import (
    Invoice,
    LedgerEntry,
    Order,
    Plan,
    Price,
    Redemption,
    Subscription,
    Voucher,
)
from orgs.models import Organization
from tests.billing.helpers import order_plan, through_quote

pytestmark = pytest.mark.django_db

CODE = "CHECKOUT-2026-ABCDEF"


def quote(data):
    return Client().post("/api/v1/quote", data, content_type="application/json")


def test_public_quote_computes_totals_server_side(sovereign):
    response = quote({"plan": "s"})
    assert response.status_code == 200
    body = response.json()
    assert (
        body["subtotal_minor"] == 15_000
        and body["tax_minor"] == 750
        and body["total_minor"] == 15_750
    )
    assert body["total"] == "OMR 15.750" and body["currency"] == "OMR"


def test_quote_errors_name_the_field(sovereign):
    assert quote({"plan": "platinum"}).json() == {"errors": {"plan": ["Unknown plan “platinum”."]}}
    bad = quote({"plan": "s", "addons": {"backup": 1}})
    assert bad.status_code == 400 and "addons.backup" in bad.json()["errors"]
    assert quote({}).status_code == 400


def test_effective_dated_prices_and_addons(sovereign, cast):
    plan = Plan.objects.get(code="s")
    now = timezone.now()
    pricing.set_price(
        by=None, plan=plan, amount_minor=20_000, effective_from=now + timedelta(days=30)
    )
    assert pricing.quote(plan_code="s").subtotal_minor == 15_000
    assert pricing.quote(plan_code="s", at=now + timedelta(days=31)).subtotal_minor == 20_000
    pricing.create_addon(by=None, code="backup", name="Backup", unit="100 GiB", amount_minor=2_000)
    q = pricing.quote(plan_code="s", addons={"backup": 3})
    assert q.subtotal_minor == 21_000 and q.total_minor == 22_050


def test_operator_edits_plans_and_prices(cast, operator_client, client_for):
    response = operator_client.post(
        "/bss/plans/s/", {"form": "price", "amount": "16.500", "effective_from": ""}
    )
    assert response.status_code == 302
    assert pricing.quote(plan_code="s").subtotal_minor == 16_500
    bad = operator_client.post("/bss/plans/s/", {"form": "price", "amount": "16.5001"})
    assert bad.status_code == 400 and "amount" in bad.context["price_form"].errors
    response = operator_client.post(
        "/bss/plans/s/",
        {
            "name": "Small",
            "cpu_millicores": 2500,
            "memory_mib": 4096,
            "disk_gib": 60,
            "is_active": "on",
        },
    )
    assert response.status_code == 302 and Plan.objects.get(code="s").cpu_millicores == 2500
    listing = operator_client.get("/bss/plans/")
    assert b"OMR 16.500" in listing.content and b"Small" in listing.content
    response = operator_client.post(
        "/bss/addons/new/", {"code": "backup", "name": "Backup", "unit": "GiB", "amount": "1.250"}
    )
    assert response.status_code == 302
    assert Price.objects.get(addon__code="backup").amount_minor == 1_250
    assert (
        client_for(cast["owner"])
        .post("/bss/plans/s/", {"form": "price", "amount": "1"})
        .status_code
        == 404
    )


def wizard(client, **data):
    base = {
        "slug": "freshco",
        "display_name": "Fresh Co",
        "plan": "l",
        "region": "hz-fsn-rtz-prod",
        "code": "",
    }
    return client.post("/checkout/", {**base, **data})


def test_checkout_without_enough_credit_waits_for_payment(
    cast, client_for, operator_client, on_commit
):
    vouchers.issue_vouchers(by=None, terms=vouchers.VoucherTerms(credit_minor=10_000), code=CODE)
    client = client_for(cast["outsider"])
    with on_commit():
        response = through_quote(client, wizard(client, code=CODE))
    assert response.status_code == 302
    org = Organization.objects.get(slug="freshco")
    order = Order.objects.get(organization=org)
    assert order.status == "awaiting_payment" and order.total_minor == 57_750  # L 55.000 + 5 %
    assert order.credit_applied_minor == 10_000 and order.due_minor == 47_750
    invoice = Invoice.objects.get(order=order)
    assert invoice.number == f"INV-{timezone.now().year}-000001" and invoice.total_minor == 47_750
    assert not Subscription.objects.exists()
    # the voucher credit is held for the order
    assert LedgerEntry.objects.filter(organization=org).balance() == 0

    orders = operator_client.get("/bss/orders/", {"status": "awaiting_payment"})
    assert invoice.number.encode() in orders.content
    # owners of the org cannot mark their own order as paid
    assert client.post(f"/bss/orders/{order.pk}/pay/", {"reference": "x"}).status_code == 404
    assert (
        operator_client.post(f"/bss/orders/{order.pk}/pay/", {"reference": ""}).status_code == 302
    )
    order.refresh_from_db()
    assert order.status == "awaiting_payment"
    operator_client.post(f"/bss/orders/{order.pk}/pay/", {"reference": "BANK-42"})
    order.refresh_from_db()
    invoice.refresh_from_db()
    assert (
        order.status == "paid"
        and invoice.status == "paid"
        and invoice.payment_reference == "BANK-42"
    )
    assert Subscription.objects.get(organization=org).plan_code == "l"
    assert LedgerEntry.objects.filter(organization=org).balance() == 0
    # paying twice is refused
    operator_client.post(f"/bss/orders/{order.pk}/pay/", {"reference": "BANK-43"})
    assert LedgerEntry.objects.filter(reason="payment").count() == 1


def test_wizard_errors_write_nothing_and_keep_the_voucher(cast, client_for):
    vouchers.issue_vouchers(by=None, terms=vouchers.VoucherTerms(credit_minor=10_000), code=CODE)
    client = client_for(cast["outsider"])
    cases = [
        ({"plan": "platinum"}, "plan", "Unknown plan"),
        ({"slug": "acme"}, "slug", "already taken"),
        ({"slug": "Bad Slug"}, "slug", ""),
        ({"region": "mars-1"}, "region", "Unknown region"),
        ({"code": "NOT-A-REAL-CODE-99"}, "code", "not valid"),
    ]
    for data, field, message in cases:
        response = wizard(client, code=data.pop("code", CODE), **data)
        assert response.status_code == 400, data
        errors = response.context["form"].errors
        assert field in errors and message in " ".join(errors[field]), (data, errors)
    assert not Organization.objects.filter(slug="freshco").exists()
    assert not Redemption.objects.exists() and Voucher.objects.get().redeemed_count == 0


def test_pricing_failure_never_uses_up_a_voucher(cast, client_for):
    vouchers.issue_vouchers(by=None, terms=vouchers.VoucherTerms(credit_minor=10_000), code=CODE)
    Price.objects.filter(plan__code="l").delete()  # plan L lost its price: quoting fails
    response = wizard(client_for(cast["outsider"]), code=CODE)
    assert response.status_code == 400 and "no price" in " ".join(
        response.context["form"].errors["plan"]
    )
    assert (
        not Redemption.objects.exists() and not Organization.objects.filter(slug="freshco").exists()
    )


def test_existing_org_changes_plan_paid_by_credit(cast, client_for):
    from billing import ledger

    ledger.append(org=cast["acme"], amount_minor=200_000, reason="test")
    client = client_for(cast["owner"])
    response = through_quote(client, client.post("/billing/acme/plan/", {"plan": "xl"}))
    assert response.status_code == 302
    cast["acme"].refresh_from_db()
    assert cast["acme"].plan_code == "xl" and ledger.balance(cast["acme"]) == 200_000 - 103_950
    assert client_for(cast["viewer"]).post("/billing/acme/plan/", {"plan": "s"}).status_code == 403


def test_plan_change_is_delivered_to_the_organization_cr(cast, client_for, on_commit):
    import yaml

    from billing import ledger
    from tests.gitutil import show

    ledger.append(org=cast["acme"], amount_minor=200_000, reason="test")
    client = client_for(cast["owner"])
    with on_commit():
        through_quote(client, client.post("/billing/acme/plan/", {"plan": "m"}))
    cr = yaml.safe_load(show("organizations/acme/organization.yaml"))
    assert cr["spec"]["plan"] == "m"


def test_orders_and_payments_become_platform_events(cast, settings):
    from billing import checkout, ledger
    from core.models import PlatformEvent

    settings.NATS_URL = "nats://127.0.0.1:4222"  # events are written; publishing runs after commit
    order = order_plan(by=cast["owner"], org=cast["acme"], plan_code="s")
    placed = PlatformEvent.objects.get(subject="catalyst.order.placed")
    assert placed.payload["organization"] == "acme" and placed.payload["total_minor"] == 15_750
    assert placed.payload["status"] == "awaiting_payment"
    checkout.record_payment(by=cast["sovereign_operator"], order=order, reference="BANK-1")
    paid = PlatformEvent.objects.get(subject="catalyst.invoice.paid")
    assert paid.payload["invoice"] == order.invoice.number
    assert ledger.balance(cast["acme"]) == 0


def test_wizard_orders_add_ons(cast, client_for, on_commit):
    from billing import ledger

    pricing.create_addon(by=None, code="backup", name="Backup", unit="100 GiB", amount_minor=2_000)
    vouchers.issue_vouchers(by=None, terms=vouchers.VoucherTerms(credit_minor=30_000), code=CODE)
    client = client_for(cast["outsider"])
    page = client.get("/checkout/")
    assert "Backup (100 GiB — OMR 2.000 a month)" in page.content.decode()
    bad = wizard(client, plan="s", code=CODE, addon_backup=5000)
    assert bad.status_code == 400 and "addon_backup" in bad.context["form"].errors
    assert not Organization.objects.filter(slug="freshco").exists()
    with on_commit():
        response = through_quote(client, wizard(client, plan="s", code=CODE, addon_backup=2))
    assert response.status_code == 302
    order = Order.objects.get()
    assert [line["code"] for line in order.lines] == ["s", "backup"]
    assert order.subscription.addons == {"backup": 2}
    assert order.subtotal_minor == 19_000 and order.total_minor == 19_950
    assert ledger.balance(order.organization) == 30_000 - 19_950
