"""The accounts pages in Chromium: axe-clean, and the error summary takes the focus."""

from __future__ import annotations

import pytest

from tests.browser.conftest import axe_violations, sign_in
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "path", ["/login/pin/", "/password-reset/", "/account/", "/account/password/"]
)
def test_account_pages_have_no_serious_accessibility_violations(page, live_server, sovereign, path):
    make_user("wendy")
    if path.startswith("/account/"):
        sign_in(page, live_server, "wendy", PASSWORD)
    page.goto(f"{live_server.url}{path}")
    assert axe_violations(page) == []


def test_a_form_with_errors_leads_with_a_summary_that_has_the_focus(page, live_server, sovereign):
    page.goto(f"{live_server.url}/signup/")
    page.fill("#id_email", "not-an-address")
    page.click("main button[type=submit]")
    summary = page.locator(".error-summary")
    summary.wait_for()
    assert "There is a problem" in summary.inner_text()
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    page.click(".error-summary a[href='#id_email']")
    assert page.evaluate("document.activeElement.id") == "id_email"
    assert page.input_value("#id_email") == "not-an-address"  # what was typed is kept
    assert axe_violations(page) == []
