"""The operator console's overview and the shell every signed-in page shares."""

from __future__ import annotations

import re

import pytest

from billing import vouchers

pytestmark = pytest.mark.django_db


def test_bss_overview_sums_money_orgs_and_vouchers(cast, client_for):
    vouchers.issue_vouchers(by=None, terms=vouchers.VoucherTerms(credit_minor=5000), count=3)
    page = client_for(cast["sovereign_operator"]).get("/bss/")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
    assert page.status_code == 200
    assert "Paid this month OMR 0.000" in text and "3 active" in text
    assert "Organizations 2" in text  # acme and globex
    # everyone else: the console does not exist
    for role in ("owner", "admin", "viewer", "outsider"):
        assert client_for(cast[role]).get("/bss/").status_code == 404


def test_shell_marks_the_current_page_and_offers_the_organization_switcher(cast, client_for):
    html = client_for(cast["owner"]).get("/orgs/acme/members/").content.decode()
    sidebar = html.split('<nav class="sidebar"')[1].split("</nav>")[0]
    current = re.findall(r'<a href="([^"]+)" aria-current="page"', sidebar)
    assert current == ["/orgs/acme/members/"]  # one current item, the longest match
    assert 'href="/orgs/acme/environments/acme-prod/"' in sidebar  # Environments under Overview
    assert 'href="/orgs/acme/billing/"' not in sidebar  # no such URL: billing lives elsewhere
    assert 'href="/billing/acme/"' in sidebar and 'href="/orgs/acme/audit/"' in sidebar
    assert "Console" not in sidebar  # customers get no operator console
    switcher = html.split('class="tb-menu switcher"')[1].split("</details>")[0]
    assert 'href="/orgs/acme/"' in switcher and "/orgs/globex/" not in switcher
    # another Organization's owner is offered only their own Organization
    env_only = client_for(cast["member_b"]).get("/orgs/globex/").content.decode()
    assert "/orgs/acme/" not in env_only.split('<nav class="sidebar"')[1].split("</nav>")[0]


def test_the_navigation_escapes_what_customers_named(cast, client_for):
    acme = cast["acme"]
    acme.display_name = '<img src=x onerror="alert(1)">'
    acme.save(update_fields=["display_name"])
    html = client_for(cast["owner"]).get("/orgs/acme/members/").content.decode()
    sidebar = html.split('<nav class="sidebar" aria-label="Primary">')[1].split("</nav>")[0]
    menu = html.split('aria-label="Primary (menu)" class="menu-panel">')[1].split("</nav>")[0]
    assert sidebar == menu  # built once, shown twice
    title = '<p class="nav-title">&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</p>'
    assert sidebar.count(title) == 1 and "<img" not in sidebar
    assert '<ul aria-label="Environments"><li><a href="/orgs/acme/environments/' in sidebar


def test_operators_get_the_console_section(cast, client_for):
    html = client_for(cast["sovereign_operator"]).get("/bss/vouchers/").content.decode()
    sidebar = html.split('<nav class="sidebar"')[1].split("</nav>")[0]
    assert "Console" in sidebar
    for url in ("/bss/", "/bss/vouchers/", "/bss/plans/", "/bss/orders/", "/audit/"):
        assert f'href="{url}"' in sidebar
    assert re.findall(r'<a href="([^"]+)" aria-current="page"', sidebar) == ["/bss/vouchers/"]


def test_plan_list_shows_scheduled_prices(cast, client_for):
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import Plan, Price
    from tests.billing.conftest import seed_price_book

    seed_price_book()
    plan = Plan.objects.get(code="s")
    later = timezone.now() + timedelta(days=30)
    Price.objects.create(plan=plan, amount_minor=18_000, currency="OMR", effective_from=later)
    page = client_for(cast["sovereign_operator"]).get("/bss/plans/")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
    assert re.search(rf"from {later:%Y-%m-%d} \d\d:\d\d UTC ?: OMR 18\.000", text)
