"""The marketplace in a real browser: htmx search keeps the filter in the URL, install flow, axe clean."""

from __future__ import annotations

import pytest
from django.conf import settings

from marketplace import loader
from marketplace.models import Application, CatalogSource
from tests.billing.conftest import seed_price_book
from tests.browser.conftest import axe_violations, sign_in
from tests.conftest import PASSWORD
from tests.gitutil import commits

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalog(db):
    source = CatalogSource.objects.create(
        name="public", kind="directory", location=str(settings.CATALOG_DIR)
    )
    loader.sync_source(source)
    return source


def test_search_filters_by_htmx_and_keeps_the_url(page, live_server, cast, catalog):
    sign_in(page, live_server, "admin", PASSWORD)
    page.goto(f"{live_server.url}/marketplace/")
    assert page.locator("article.card").count() >= 12
    page.fill("#id_q", "keycloak")
    page.wait_for_url("**/marketplace/?q=keycloak*")
    page.wait_for_function("() => document.querySelectorAll('article.card').length === 1")
    assert "Keycloak" in page.locator("#results").inner_text()
    page.select_option("select[name=category]", "databases")
    page.wait_for_url("**category=databases*")
    page.reload()
    assert page.input_value("#id_q") == "keycloak"
    assert page.js_errors == []


def test_install_from_the_catalog(page, live_server, cast, catalog):
    sign_in(page, live_server, "admin", PASSWORD)
    page.goto(f"{live_server.url}/marketplace/bp-valkey/")
    page.click("text=Install 2.0.0")
    page.select_option("#id_environment", "acme-prod")
    page.wait_for_selector("input[name=regions][value=hz-fsn-rtz-prod]")
    page.fill("#id_name", "cache")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Files to commit")
    assert "overlays/acme-prod/hz-fsn-rtz-prod/helmrelease.yaml" in page.content()
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/marketplace/apps/acme-prod/cache/")
    assert Application.objects.get(name="cache").state == "committed"
    assert (
        commits("acme", "cache", "main")[0] == "applications.install: application acme-prod/cache"
    )
    assert page.js_errors == []


@pytest.mark.parametrize(
    "path",
    [
        "/marketplace/",
        "/marketplace/bp-wordpress/",
        "/marketplace/bp-wordpress/install/",
        "/marketplace/apps/",
    ],
)
def test_marketplace_pages_have_no_serious_accessibility_violations(
    page, live_server, cast, catalog, path
):
    sign_in(page, live_server, "admin", PASSWORD)
    page.goto(f"{live_server.url}{path}")
    assert axe_violations(page) == []
    assert page.js_errors == []


def test_install_wordpress_with_a_new_database_shows_the_wiring(page, live_server, cast, catalog):
    """The journey a new customer makes: WordPress, a new MariaDB for it, the preview shows how
    WordPress is wired to that database (Secrets as references) and the monthly price."""
    seed_price_book()  # an earlier transactional test may have flushed the seeded rates
    sign_in(page, live_server, "admin", PASSWORD)
    page.goto(f"{live_server.url}/marketplace/bp-wordpress/")
    assert "OMR 0.000" in page.locator("[data-price-total]").inner_text()
    page.click("text=Install 2.0.0")
    page.select_option("#id_environment", "acme-prod")
    page.wait_for_selector("input[name=regions][value=hz-fsn-rtz-prod]")
    page.fill("#id_name", "blog")
    page.fill("#id_domain", "blog.acme.test")
    page.fill("#id_admin__email", "ops@acme.test")
    page.select_option("#id_dep__db", "new")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Wiring")
    wiring = page.locator("table[data-wiring=blog]")
    assert "blog ← db: blog-db" in wiring.locator("caption").inner_text()
    text = wiring.inner_text()
    assert "externalDatabase.host" in text and "blog-db" in text and "mariadb.enabled" in text
    assert "Secret blog-db-credentials, key password" in text
    assert "OMR 0.000" in page.locator("[data-price-total]").inner_text()
    page.screenshot(
        path=str(settings.BASE_DIR / "var" / "screenshots" / "wordpress-wiring.png"), full_page=True
    )
    assert axe_violations(page) == []
    page.click("main form button[type=submit]:has-text('Install')")
    page.wait_for_url(f"{live_server.url}/marketplace/apps/acme-prod/blog/")
    assert Application.objects.get(name="blog").dependencies == {"db": "blog-db"}
    assert commits("acme", "blog", "main")[0] == "applications.install: application acme-prod/blog"
    # a day-2 change from the Application page: preview the new size, then confirm
    page.click("summary:has-text('More actions')")
    page.click("text=Change size")
    page.select_option("#id_size", "medium")
    page.click("main button:has-text('Preview the change')")
    page.wait_for_selector("text=Confirm and commit")
    assert axe_violations(page) == []
    page.click("text=Confirm and commit")
    page.wait_for_url(f"{live_server.url}/marketplace/apps/acme-prod/blog/")
    assert "size medium" in page.content()
    assert Application.objects.get(name="blog").size == "medium"
    page.click("summary:has-text('More actions')")
    page.click("text=Revisions")
    assert page.locator("tr[data-revision]").count() == 2
    assert axe_violations(page) == []
    assert page.js_errors == []
