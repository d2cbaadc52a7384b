"""Values shown as YAML carry a copy button (UX.md "Objects and state"): our own script from
static/ (no CDN), a real <button> reached and pressed by keyboard, the copy announced, axe clean.
Without JavaScript the button stays hidden: the YAML is still there to select."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from marketplace import services
from marketplace.models import BlueprintVersion
from tests.browser.conftest import axe_violations, sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)
APP = "/marketplace/apps/acme-prod/cache/"


@pytest.fixture
def app(catalog: Any, cast: dict[str, Any], on_commit: Any) -> Any:
    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    with on_commit():
        return services.install(
            by=cast["admin"],
            env=cast["acme"].environments.get(env_type="prod"),
            version=version,
            name="cache",
            values={"architecture": "replication", "persistence": {"enabled": True}},
        )


@pytest.fixture
def clip_page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


def test_the_values_block_offers_a_copy_button_without_javascript(cast, app):
    client = Client()
    client.force_login(cast["viewer"])
    html = client.get(APP).content.decode()
    button = re.search(r"<button[^>]*data-copy=\"values-yaml\"[^>]*>(.*?)</button>", html, re.S)
    assert button is not None and " hidden" in button[0]  # shown by the script only
    assert 'type="button"' in button[0] and "Copy" in button[1]
    assert re.search(r'<pre[^>]*id="values-yaml"', html)
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert "/static/js/copy.js" in scripts and all(s.startswith("/static/") for s in scripts)


def test_copy_by_keyboard_puts_the_yaml_on_the_clipboard(clip_page, live_server, cast, app):
    page = clip_page
    sign_in(page, live_server, "viewer", PASSWORD)
    page.goto(f"{live_server.url}{APP}")
    button = page.locator("button[data-copy='values-yaml']")
    assert button.is_visible()
    expected = page.locator("#values-yaml").inner_text()
    assert "architecture: replication" in expected
    for _ in range(200):  # keyboard only: Tab until the button has the focus, then Enter
        if page.evaluate("document.activeElement?.dataset?.copy === 'values-yaml'"):
            break
        page.keyboard.press("Tab")
    else:
        raise AssertionError("the copy button is not reachable by Tab")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('[data-copy-status=\"values-yaml\"]').textContent.includes('Copied')"
    )
    assert page.evaluate("navigator.clipboard.readText()") == expected
    assert axe_violations(page) == []
    assert page.js_errors == []


def test_a_new_api_token_can_be_copied(clip_page, live_server, cast):
    page = clip_page
    sign_in(page, live_server, "owner", PASSWORD)
    page.goto(f"{live_server.url}/account/tokens/")
    page.fill("#id_name", "ci")
    page.click("main form button[type=submit]")
    page.wait_for_selector("#new-token")
    page.click("button[data-copy='new-token']")
    page.wait_for_function(
        "() => document.querySelector('[data-copy-status=\"new-token\"]').textContent.includes('Copied')"
    )
    token = page.locator("#new-token").inner_text()
    assert token.startswith("cpt_") and page.evaluate("navigator.clipboard.readText()") == token
    assert axe_violations(page) == []
