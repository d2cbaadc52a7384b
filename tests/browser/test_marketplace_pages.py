"""The marketplace in a real browser: htmx search keeps the filter in the URL, install flow, axe clean."""

from __future__ import annotations

import pytest
from django.conf import settings

from marketplace import loader
from marketplace.models import Application, CatalogSource
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
    page.wait_for_function("document.querySelectorAll('article.card').length === 1")
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
    assert "clusters/hz-fsn-rtz-prod/applications/cache/helmrelease.yaml" in page.content()
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
