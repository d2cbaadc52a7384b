"""Issue 14's journey in Chromium: the month's billing run leaves a draft, an operator issues it,
the customer sees it (HTML document) and pays it by card on the Stripe emulator's hosted page, and
the revenue page moves at each step."""

from __future__ import annotations

import re
from typing import Any

import pytest

from billing import runs
from billing.models import Invoice, InvoiceStatus
from tests.billing.conftest import seed_price_book
from tests.billing.stripe_emulator import stripe_configured
from tests.billing.test_invoice_run import PERIOD, flexi, use
from tests.browser.conftest import axe_violations, sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = "var/screenshots"


def shot(page: Any, name: str) -> None:
    page.screenshot(path=f"{SHOTS}/issue14-{name}.png", full_page=True)


def kpi(page: Any, name: str) -> str:
    return page.locator(f"#kpi-{name}").inner_text()


def usage_this_month(page: Any) -> str:
    """The revenue table's cell for usage in the current month ('' when there is none)."""
    headers = [h.strip() for h in page.locator("#revenue-table thead th").all_inner_texts()]
    if "USAGE" not in headers:
        return ""
    last = page.locator("#revenue-table tbody tr").last
    return last.locator("td").nth(headers.index("USAGE") - 1).inner_text()


def test_operator_issues_customer_pays_revenue_moves(page, live_server, cast, settings, chromium):
    seed_price_book()
    webhook = f"{live_server.url}/billing/webhooks/stripe/"
    acme = flexi(cast["acme"])
    use(acme, "cpu-core-hours", "1500")  # 1000 × 12 + 500 × 10 = 17.000, tax 0.850
    use(acme, "egress-gib", "120", n=1)  # 20 × 20 = 0.400, tax 0.020
    runs.run(PERIOD, issue=False)
    draft = Invoice.objects.get(organization=acme, period=PERIOD)

    with stripe_configured(settings, webhook_url=webhook) as stripe_api:
        sign_in(page, live_server, "sovereign_operator", PASSWORD)
        page.goto(f"{live_server.url}/bss/revenue/")
        assert kpi(page, "outstanding") == "OMR 0.000" and usage_this_month(page) == ""
        shot(page, "1-revenue-before")

        page.goto(f"{live_server.url}/bss/invoices/?status=draft")
        row = page.locator(f"#invoice-{draft.pk}")
        assert "(draft)" in row.inner_text() and "OMR 18.270" in row.inner_text()
        assert axe_violations(page) == []
        shot(page, "2-drafts")
        row.locator("button", has_text="Issue").click()
        page.wait_for_selector("text=issued.")
        number = Invoice.objects.get(pk=draft.pk).number
        assert re.fullmatch(r"INV-\d{4}-000001", number)
        page.goto(f"{live_server.url}/bss/invoices/")
        assert number in page.locator(f"#invoice-{draft.pk}").inner_text()
        shot(page, "3-issued")

        page.goto(f"{live_server.url}/bss/revenue/")
        assert kpi(page, "outstanding") == "OMR 18.270"
        assert usage_this_month(page) == "OMR 17.400"
        assert axe_violations(page) == []
        shot(page, "4-revenue-issued")

        customer = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
        sign_in(customer, live_server, "owner", PASSWORD)
        customer.goto(f"{live_server.url}/billing/acme/")
        invoice_row = customer.locator(f"#invoices #invoice-{draft.pk}")
        assert number in invoice_row.inner_text() and "Issued" in invoice_row.inner_text()
        assert axe_violations(customer) == []
        shot(customer, "5-customer-billing")
        invoice_row.locator("a", has_text="HTML").click()
        customer.wait_for_url(f"{live_server.url}/billing/acme/invoices/{draft.pk}/")
        assert customer.locator("#due").inner_text() == "OMR 18.270"
        assert "CPU (cpu-core-hours)" in customer.locator("table.lines").inner_text()
        shot(customer, "6-invoice-document")
        customer.go_back()
        customer.locator(f"#invoice-{draft.pk} button", has_text="by card").click()
        customer.wait_for_url(f"{stripe_api.url}/pay/**")
        assert "OMR 18270" in customer.locator("#amount").inner_text()  # minor units at Stripe
        customer.click("text=Pay")
        customer.wait_for_url(f"{live_server.url}/billing/acme/?paid=**")
        assert "Paid" in customer.locator(f"#invoices #invoice-{draft.pk}").inner_text()
        assert "OMR 18.270" in customer.locator("#payments").inner_text()
        shot(customer, "7-paid")
        assert stripe_api.delivered == [("checkout.session.completed", 200)]

        page.goto(f"{live_server.url}/bss/revenue/")
        assert kpi(page, "outstanding") == "OMR 0.000"
        assert usage_this_month(page) == "OMR 17.400"
        shot(page, "8-revenue-paid")
    assert Invoice.objects.get(pk=draft.pk).status == InvoiceStatus.PAID
    assert page.js_errors == []
