"""The Organization pages in a real browser: live slug check by htmx, creation, no JS errors, axe clean."""

from __future__ import annotations

import pytest

from orgs.models import Organization
from tests.browser.conftest import axe_violations, sign_in
from tests.conftest import PASSWORD, make_user
from tests.gitutil import commits

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_organization_in_the_browser(page, live_server, sovereign):
    make_user("bella")
    sign_in(page, live_server, "bella", PASSWORD)
    page.goto(f"{live_server.url}/orgs/new/")
    page.fill("#id_slug", "gitea")
    page.wait_for_selector("#slug-status >> text=reserved by the platform")
    page.fill("#id_slug", "bella-bakery")
    page.wait_for_selector("#slug-status >> text=is available")
    page.fill("#id_display_name", "Bella's Bakery")
    page.select_option("#id_env_type", "prod")
    page.check("input[name=regions][value=hz-fsn-rtz-prod]")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/orgs/bella-bakery/")
    assert page.locator("h1").inner_text() == "Bella's Bakery"
    assert "committed" in page.locator("#facts-title + dl.facts").inner_text()
    assert Organization.objects.get(slug="bella-bakery").delivery_state == "delivered"
    assert commits()[0] == "organization.create: organization bella-bakery"
    assert page.js_errors == []


@pytest.mark.parametrize(
    "path",
    ["/login/", "/orgs/", "/orgs/new/", "/orgs/acme/", "/orgs/acme/audit/", "/account/tokens/"],
)
def test_pages_have_no_serious_accessibility_violations(page, live_server, cast, path):
    if path != "/login/":
        sign_in(page, live_server, "owner", PASSWORD)
    page.goto(f"{live_server.url}{path}")
    assert axe_violations(page) == []
    assert page.js_errors == []
