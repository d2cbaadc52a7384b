"""The whole voucher journey through HTTP: issue → e-mail → preview → sign-up → wizard → balance."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from billing.models import LedgerEntry, Order, Redemption, Subscription, Voucher
from core.models import AuditEvent
from orgs.models import Organization
from tests.accounts.conftest import last_pin

pytestmark = pytest.mark.django_db


def test_voucher_journey_from_issue_to_balance(cast, operator_client, on_commit):
    with on_commit():
        response = operator_client.post(
            "/bss/vouchers/new/",
            {
                "count": 1,
                "code": "",
                "credit": "50.000",
                "description": "Launch campaign",
                "reason": "campaign",
                "max_redemptions": 10,
                "plan_code": "",
                "recipient_email": "newcomer@example.test",
                "is_active": "on",
            },
        )
    assert response.status_code == 302
    voucher = Voucher.objects.get()
    assert re.fullmatch(r"VCH-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{12}", voucher.code)
    assert voucher.credit_minor == 50_000 and voucher.created_by == cast["sovereign_operator"]
    assert AuditEvent.objects.filter(action="voucher.issue", target_id=str(voucher.pk)).exists()

    # the e-mail carries the exact link
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["newcomer@example.test"]
    link = f"https://marketplace.demo.local/redeem/?code={voucher.code}"
    assert link in mail.outbox[0].body

    # anonymous visitor: preview page and API, lower-case code works
    visitor = Client()
    page = visitor.get("/redeem/", {"code": voucher.code.lower()})
    assert page.status_code == 200
    assert b"OMR 50.000" in page.content and b"Sign up to redeem" in page.content
    api = visitor.post(
        "/api/v1/vouchers/preview", {"code": voucher.code}, content_type="application/json"
    )
    assert api.status_code == 200 and api.json()["credit"] == "OMR 50.000"
    assert "max_redemptions" not in api.json() and "redeemed_count" not in api.json()

    # sign up through the link on the page; ?next= carries the code to the wizard
    signup_url = re.search(rb'href="(/signup/\?next=[^"]+)"', page.content).group(1).decode()
    signup_url = signup_url.replace("&amp;", "&")
    response = visitor.post(
        signup_url,
        {
            "email": "Newcomer@Example.test",
            "name": "New Comer",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
        },
    )
    # the address is confirmed with the PIN e-mailed to it, and the flow goes on to the wizard
    assert response.status_code == 302 and response["Location"].startswith("/signup/confirm/")
    response = visitor.post(response["Location"], {"pin": last_pin("newcomer@example.test")})
    assert response.status_code == 302
    assert response["Location"] == f"/checkout/?code={voucher.code}"
    wizard = visitor.get(response["Location"])
    assert wizard.status_code == 200 and voucher.code.encode() in wizard.content

    with on_commit():
        response = visitor.post(
            "/checkout/",
            {
                "slug": "newco",
                "display_name": "New Co",
                "plan": "m",
                "region": "hz-fsn-rtz-prod",
                "code": voucher.code,
            },
        )
    assert response.status_code == 302, response.content
    assert response["Location"] == "/billing/newco/"
    org = Organization.objects.get(slug="newco")
    assert org.plan_code == "m" and org.created_by.username == "newcomer@example.test"
    assert org.delivery_state == "delivered"  # provisioning started (Org CR committed)
    assert Redemption.objects.get().organization == org
    voucher.refresh_from_db()
    assert voucher.redeemed_count == 1
    order = Order.objects.get(organization=org)
    # plan M 29.000 + 5 % tax = 30.450, paid from the 50.000 credit
    assert order.total_minor == 30_450 and order.status == "paid"
    assert Subscription.objects.get(organization=org).plan_code == "m"
    refs = sorted(
        LedgerEntry.objects.filter(organization=org).values_list("reference", "amount_minor")
    )
    assert refs == [(f"order:{order.pk}", -30_450), (f"promo:{voucher.code}", 50_000)]

    balance_page = visitor.get("/billing/newco/")
    assert balance_page.status_code == 200 and b"OMR 19.550" in balance_page.content
    # another customer cannot see it
    assert Client().get("/billing/newco/").status_code == 302
    outsider = Client()
    outsider.force_login(cast["outsider"])
    assert outsider.get("/billing/newco/").status_code == 404

    # the operator sees the redemption in the voucher's history and the customer's balance
    detail = operator_client.get(f"/bss/vouchers/{voucher.pk}/")
    assert b"newco" in detail.content and b"redeemed 1/10" in detail.content
    customers = operator_client.get("/bss/customers/")
    assert b"OMR 19.550" in customers.content


def test_the_code_survives_sign_in_of_an_existing_customer(cast, on_commit):
    from billing import vouchers
    from tests.conftest import PASSWORD

    vouchers.issue_vouchers(
        by=None, terms=vouchers.VoucherTerms(credit_minor=20_000), code="RETURNING-2026-XYZ"
    )
    client = Client()
    page = client.get("/redeem/", {"code": "returning-2026-xyz"})
    login_url = re.search(rb'href="(/login/\?next=[^"]+)"', page.content).group(1).decode()
    response = client.post(
        login_url.replace("&amp;", "&"),
        {"username": "outsider", "password": PASSWORD, "next": "/redeem/?code=returning-2026-xyz"},
    )
    assert (
        response.status_code == 302 and response["Location"] == "/redeem/?code=returning-2026-xyz"
    )
    # the wizard remembers the code from the session even without the query string
    wizard = client.get("/checkout/")
    assert b'value="RETURNING-2026-XYZ"' in wizard.content
    with on_commit():
        response = client.post(
            "/checkout/",
            {
                "slug": "back-again",
                "display_name": "Back",
                "plan": "s",
                "region": "hz-hel-rtz-prod",
                "code": "RETURNING-2026-XYZ",
            },
        )
    assert response.status_code == 302
    org = Organization.objects.get(slug="back-again")
    assert LedgerEntry.objects.filter(organization=org).balance() == 20_000 - 15_750
    assert client.get("/checkout/").context["form"].initial["code"] == ""  # used up: forgotten
