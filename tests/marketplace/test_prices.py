"""Price where people decide: the Blueprint page prices the chosen size and topology from the
price book (billing's pricing API), including the dependencies a default install creates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import pricing
from billing.models import AddOn

pytestmark = pytest.mark.django_db


def _total(html: str) -> str:
    start = html.index("data-price-total><strong>") + len("data-price-total><strong>")
    return html[start : html.index("</strong>", start)]


def test_blueprint_page_prices_size_and_topology(catalog, cast, client_for):
    client = client_for(cast["viewer"])
    page = client.get("/marketplace/bp-wordpress/").content.decode()
    # WordPress small + its new MariaDB small: both included in the plan, nothing extra
    assert _total(page) == "OMR 0.000" and "Included in your plan" in page
    page = client.get(
        "/marketplace/bp-wordpress/?size=medium&placement=active-hotstandby&regions=2"
    ).content.decode()
    # medium 4.000 + one hot-standby region 6.000; MariaDB is single-region only: medium 4.000
    assert _total(page) == "OMR 14.700" and "wordpress: Hot-standby region" in page
    page = client.get("/marketplace/bp-valkey/?size=large&placement=active-active&regions=3")
    assert _total(page.content.decode()) == "OMR 28.350"  # 3 active regions × 9.000 + tax
    bad = client.get("/marketplace/bp-valkey/?size=huge&placement=active-active&regions=3")
    assert bad.status_code == 200 and _total(bad.content.decode()) == "OMR 0.000"  # defaults


def test_a_new_price_in_the_price_book_shows_at_once(catalog, cast, client_for):
    medium = AddOn.objects.get(code="app-medium")
    pricing.set_price(
        by=cast["sovereign_operator"],
        addon=medium,
        amount_minor=9000,
        effective_from=timezone.now() - timedelta(seconds=1),
    )
    page = client_for(cast["viewer"]).get(
        "/marketplace/bp-valkey/?size=medium&placement=single-region&regions=1"
    )
    assert _total(page.content.decode()) == "OMR 9.450"


def test_without_a_rate_the_page_says_so(catalog, cast, client_for):
    AddOn.objects.filter(code="app-medium").update(is_active=False)
    page = (
        client_for(cast["viewer"])
        .get("/marketplace/bp-valkey/?size=medium&placement=single-region&regions=1")
        .content.decode()
    )
    assert "The price book has no price for “app-medium” in OMR." in page


def test_application_rates_are_not_checkout_add_ons(db, sovereign, client_for):
    quote = client_for(None).post(
        "/api/v1/quote", {"plan": "m", "addons": {"app-medium": 1}}, content_type="application/json"
    )
    assert quote.status_code == 400 and "addons.app-medium" in quote.json()["errors"]
