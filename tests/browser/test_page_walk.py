"""Every page at 1,280 and 390 px in Chromium: no sideways scrolling, axe at zero violations (every
impact), a screenshot of each (var/screenshots/walk/, kept as a CI artifact); and the install
journey by keyboard only (issue 15, "Checks")."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.services import create_api_token
from billing import checkout, quotes, vouchers
from gitops import naming
from marketplace import loader, services
from marketplace.models import Application, BlueprintVersion, CatalogSource
from orgs.members import hash_token
from orgs.models import Invitation
from tests.billing.conftest import seed_price_book
from tests.billing.helpers import order_plan
from tests.browser.conftest import AXE, sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "walk"
WIDTHS = (1280, 390)

CUSTOMER_PAGES = [
    "/orgs/",
    "/orgs/acme/",
    "/orgs/acme/environments/acme-prod/",
    "/orgs/acme/environments/acme-dev/",
    "/orgs/acme/environments/new/",
    "/orgs/acme/edit/",
    "/orgs/acme/suspend/",
    "/orgs/acme/members/",
    "/orgs/acme/members/matrix/",
    "/orgs/acme/audit/",
    "/orgs/new/",
    "/marketplace/",
    "/marketplace/?environment=acme-dev",
    "/marketplace/bp-wordpress/",
    "/marketplace/bp-gitea/install/",
    "/marketplace/apps/",
    "/marketplace/apps/acme-prod/blog/",
    "/marketplace/apps/acme-prod/blog/edit/",
    "/marketplace/apps/acme-prod/blog/size/",
    "/marketplace/apps/acme-prod/blog/placement/",
    "/marketplace/apps/acme-prod/blog/revisions/",
    "/marketplace/apps/acme-prod/blog/uninstall/",
    "/billing/acme/",
    "/checkout/",
    "/redeem/",
    "/account/",
    "/account/tokens/",
    # issue 15, "every page": the rest of what a customer can open
    "/orgs/acme/archive/",
    "/orgs/acme/members/invitations/{invitation}/revoke/",
    "/orgs/acme/members/{admin_id}/remove/",
    "/marketplace/plans/{install_plan}/",
    "/marketplace/apps/acme-prod/blog/upgrade/",
    "/marketplace/apps/acme-prod/blog/rollback/",
    "/marketplace/apps/acme-prod/blog/switchover/",
    "/marketplace/apps/acme-prod/blog/git/",
    "/marketplace/environments/acme-prod/policy/",
    "/billing/acme/invoices/{invoice}/",
    "/billing/acme/subscription/cancel/",
    "/quotes/{quote}/",
    "/account/email/",
    "/account/password/",
    "/account/tokens/{api_token}/revoke/",
]
OPERATOR_PAGES = [
    "/bss/",
    "/bss/vouchers/",
    "/bss/vouchers/new/",
    "/bss/vouchers/{voucher}/",
    "/bss/vouchers/{voucher}/revoke/",
    "/bss/plans/",
    "/bss/plans/s/",
    "/bss/addons/new/",
    "/bss/orders/",
    "/bss/customers/",
    "/bss/customers/acme/",
    "/bss/invoices/",
    "/bss/invoices/{invoice}/",
    "/bss/revenue/",
    "/audit/",
    "/marketplace/curation/",
    "/marketplace/sync-errors/",
]
ANONYMOUS_PAGES = [
    "/",
    "/login/",
    "/login/pin/",
    "/signup/",
    "/password-reset/",
    "/password-reset/sent/",
    "/password-reset/done/",
    "/redeem/",
    "/redeem/?code={voucher_code}",
]


@pytest.fixture
def world(cast: dict[str, Any], on_commit: Any) -> dict[str, Any]:
    source = CatalogSource.objects.create(
        name="public", kind="directory", location=str(settings.CATALOG_DIR)
    )
    loader.sync_source(source)
    seed_price_book()
    version = BlueprintVersion.objects.get(blueprint__name="bp-wordpress", version="1.1.0")
    with on_commit():
        services.install(
            by=cast["admin"],
            env=cast["acme"].environments.get(env_type="prod"),
            version=version,
            name="blog",
            values={"domain": "blog.acme.test", "admin": {"email": "ops@acme.test"}},
        )
    voucher = vouchers.issue_vouchers(
        by=None, terms=vouchers.VoucherTerms(credit_minor=5000, description="Spring campaign")
    )[0]
    order = order_plan(by=cast["owner"], org=cast["acme"], plan_code="m")
    checkout.record_payment(by=cast["sovereign_operator"], order=order, reference="TR-1")
    quote = quotes.save(quotes.for_plan_change(by=cast["owner"], org=cast["acme"], plan_code="l"))
    plan = services.make_plan(
        by=cast["owner"],
        env=cast["acme"].environments.get(env_type="prod"),
        version=BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0"),
        name="cache",
        values={},
    )
    invitation = Invitation.objects.create(
        organization=cast["acme"],
        email="newcomer@example.test",
        tier="viewer",
        scopes=[{"key": naming.ORGANIZATION_LABEL, "value": "acme"}],
        token_hash=hash_token("walk-invitation-token"),
        expires_at=timezone.now() + timedelta(hours=1),
        invited_by=cast["owner"],
    )
    return {
        "voucher": voucher.pk,
        "voucher_code": voucher.code,
        "invoice": order.invoice.pk,
        "quote": quotes.token(quote),
        "install_plan": plan.pk,
        "invitation": invitation.pk,
        "admin_id": cast["admin"].pk,
        "api_token": create_api_token(user=cast["owner"], name="walk", days=5)[0].pk,
    }


def check(page: Any, url: str, name: str) -> list[str]:
    """Load `url` at each width: the problems found (overflow, axe), screenshots saved."""
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        response = page.goto(url)
        if response is None or response.status >= 400:
            problems.append(f"{url} @{width}: HTTP {response.status if response else '—'}")
            continue
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 0:
            wide = page.evaluate(
                """() => [...document.querySelectorAll('body *')].filter(e => {
                  if (e.getBoundingClientRect().right <= innerWidth + 1) return false;
                  if (e.closest('details:not([open])')) return false;
                  for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
                    if (getComputedStyle(a).overflowX !== 'visible') return false;
                  return true;
                }).slice(0, 3).map(e => e.tagName + '.' + e.className)"""
            )
            problems.append(f"{url} @{width}: scrolls sideways by {overflow}px ({wide})")
        page.evaluate(AXE.read_text() + "\n;window.__axeLoaded = true;")
        violations = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 2).map(n => n.target.join(' ')).join(', '))"
        )
        problems += [f"{url} @{width}: axe {v}" for v in violations]
    return problems


def walk(page: Any, base: str, paths: list[str], prefix: str, **fill: Any) -> list[str]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for path in paths:
        path = path.format(**fill)
        name = prefix + (path.strip("/").replace("/", "-").replace("?", "-") or "home")
        problems += check(page, base + path, name)
    return problems


def test_customer_pages(page, live_server, world):
    sign_in(page, live_server, "owner", PASSWORD)
    problems = walk(page, live_server.url, CUSTOMER_PAGES, "owner-", **world)
    assert not problems, "\n".join(problems)
    assert page.js_errors == []


def test_operator_pages(page, live_server, world):
    sign_in(page, live_server, "sovereign_operator", PASSWORD)
    problems = walk(page, live_server.url, OPERATOR_PAGES, "operator-", **world)
    assert not problems, "\n".join(problems)
    assert page.js_errors == []


def test_public_pages(page, live_server, world):
    problems = walk(page, live_server.url, ANONYMOUS_PAGES, "public-", **world)
    assert not problems, "\n".join(problems)


def _tab_to(page: Any, selector: str, limit: int = 80) -> None:
    """Press Tab until `selector` has the focus (fails after `limit` presses)."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus by Tab")


def test_install_journey_by_keyboard_only(page, live_server, world):
    """From the Environment page to an installed Application without the mouse: the skip link,
    the error summary taking the focus, its links moving to the fields, Enter to submit."""
    sign_in(page, live_server, "admin", PASSWORD)
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{live_server.url}/orgs/acme/environments/acme-dev/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    _tab_to(page, "a[href='/marketplace/?environment=acme-dev']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/marketplace/?environment=acme-dev")
    _tab_to(page, "a[href='/marketplace/bp-valkey/?environment=acme-dev']", limit=200)
    page.keyboard.press("Enter")
    page.wait_for_url("**/marketplace/bp-valkey/?environment=acme-dev")
    _tab_to(page, "a[role=button][href*='/install/']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/install/**")
    assert page.input_value("#id_environment") == "acme-dev"
    _tab_to(page, "#id_name")
    page.keyboard.press("Control+A")
    page.keyboard.type("Bad Name!")
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_selector(".error-summary")
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    page.screenshot(path=str(SHOTS / "keyboard-install-error-390.png"), full_page=True)
    _tab_to(page, ".error-summary a[href='#id_name']", limit=5)
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#id_name"
    _tab_to(page, "#id_name", limit=10)
    page.keyboard.press("Control+A")
    page.keyboard.type("cache")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Files to commit")
    _tab_to(page, "main form button[type=submit]", limit=200)
    page.keyboard.press("Enter")
    page.wait_for_url("**/marketplace/apps/acme-dev/cache/**")
    assert "cache (Valkey" in page.locator(".messages").inner_text()
    page.screenshot(path=str(SHOTS / "keyboard-install-done-390.png"), full_page=True)
    assert Application.objects.get(name="cache").environment.name == "acme-dev"
    # the refused form answered 400 on purpose; nothing else went wrong
    assert [e for e in page.js_errors if "status of 400" not in e] == []


def test_environment_page_follows_its_applications_live(page, live_server, world):
    """The Environment's list refreshes itself: a state Flux reports shows without a reload."""
    sign_in(page, live_server, "viewer", PASSWORD)
    page.goto(f"{live_server.url}/orgs/acme/environments/acme-prod/")
    assert page.locator("tr[data-app-state=committed]").count() == 2
    Application.objects.filter(name="blog").update(state="ready")
    page.wait_for_selector("tr[data-app-state=ready]", timeout=15_000)
    assert "1 ready" in page.locator("#env-apps .summary").inner_text()
    assert page.js_errors == []
