"""The voucher journey in a real browser (no JavaScript needed, htmx slug check), axe-clean BSS pages."""

from __future__ import annotations

import pytest

from billing import vouchers
from billing.models import LedgerEntry
from orgs.models import Organization
from tests.accounts.conftest import last_pin
from tests.billing.conftest import seed_price_book
from tests.browser.conftest import ROOT, axe_violations, sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

CODE = "BROWSER-2026-ABCDEF"


def _voucher() -> None:
    seed_price_book()  # an earlier transactional test may have flushed the seeded plans
    vouchers.issue_vouchers(
        by=None,
        terms=vouchers.VoucherTerms(credit_minor=50_000, description="Welcome"),
        code=CODE,
    )


def test_redeem_sign_up_and_check_out_in_the_browser(page, live_server, sovereign):
    _voucher()
    page.goto(f"{live_server.url}/redeem/?code={CODE.lower()}")
    assert "OMR 50.000" in page.locator("main").inner_text()
    assert axe_violations(page) == []
    page.click("text=Sign up to redeem")
    page.fill("#id_email", "ria@example.test")
    page.fill("#id_name", "Ria Example")
    page.fill("#id_password1", "a-long-unusual-passphrase")
    page.fill("#id_password2", "a-long-unusual-passphrase")
    assert axe_violations(page) == []
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/signup/confirm/?*")
    assert axe_violations(page) == []
    page.fill("#id_pin", last_pin("ria@example.test"))
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/checkout/?code={CODE}")
    assert page.input_value("#id_code") == CODE
    page.fill("#id_slug", "gitea")
    page.wait_for_selector("#slug-status >> text=reserved by the platform")
    page.fill("#id_slug", "ria-co")
    page.wait_for_selector("#slug-status >> text=is available")
    page.fill("#id_display_name", "Ria Co")
    page.check("input[name=plan][value=m]")
    assert axe_violations(page) == []
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/quotes/**")
    assert page.locator("#due-now").inner_text() == "OMR 0.000"  # 30.450 covered by the voucher
    assert axe_violations(page) == []
    page.click("#confirm-quote button[type=submit]")
    page.wait_for_url(f"{live_server.url}/billing/ria-co/")
    assert page.locator("#balance").inner_text() == "OMR 19.550"
    assert axe_violations(page) == []
    assert page.js_errors == []
    org = Organization.objects.get(slug="ria-co")
    assert org.plan_code == "m" and LedgerEntry.objects.filter(organization=org).balance() == 19_550


@pytest.mark.parametrize(
    "path",
    [
        "/signup/",
        "/redeem/",
        f"/redeem/?code={CODE}",
        "/redeem/?code=UNKNOWN-CODE-1234",
        "/bss/vouchers/",
        "/bss/vouchers/new/",
        "/bss/plans/",
        "/bss/plans/m/",
        "/bss/orders/",
        "/bss/customers/",
        "/bss/customers/acme/",
        "/bss/invoices/",
        "/bss/revenue/",
        "/billing/acme/",
    ],
)
def test_billing_pages_have_no_serious_accessibility_violations(page, live_server, cast, path):
    _voucher()
    if path.startswith("/bss/") or path.startswith("/billing/"):
        sign_in(page, live_server, "sovereign_operator", PASSWORD)
    response = page.goto(f"{live_server.url}{path}")
    assert axe_violations(page) == []
    # the unknown code answers 404 on purpose; Chromium logs that status as a console error
    expected = ["Failed to load resource: the server responded with a status of 404 (Not Found)"]
    assert page.js_errors == (expected if response.status == 404 else [])


def test_an_ended_voucher_asks_for_confirmation_in_the_browser(page, live_server, cast):
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import Voucher

    seed_price_book()
    sign_in(page, live_server, "sovereign_operator", PASSWORD)
    page.goto(f"{live_server.url}/bss/vouchers/new/")
    assert page.locator("#id_confirm_ended").count() == 0
    page.fill("#id_credit", "5")
    ended = timezone.localtime(timezone.now() - timedelta(days=1))
    page.fill("#id_valid_until", ended.strftime("%Y-%m-%dT%H:%M"))
    page.click("main form button[type=submit]")
    page.wait_for_selector(".notice.warning")
    assert "already ended" in page.locator(".notice.warning").inner_text()
    assert page.evaluate("document.activeElement.classList.contains('warning')")
    assert page.input_value("#id_credit") == "5"  # kept
    assert axe_violations(page) == []
    page.screenshot(
        path=str(ROOT / "var" / "screenshots" / "voucher-ended-warning.png"), full_page=True
    )
    assert not Voucher.objects.exists()
    page.check("#id_confirm_ended")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/bss/vouchers/*/")
    assert "issued" in page.locator(".messages").inner_text()
    assert Voucher.objects.count() == 1
