"""The demo cluster in a real browser: a newcomer installs an Application through the form and
watches its status go from committed to Ready over SSE while the simulated Flux follows the commit;
the page says the cluster is simulated and stays axe-clean (screenshots in var/screenshots/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from gitops.simulated import SimulatedCluster
from marketplace.models import Application
from tests.browser.conftest import axe_violations

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "simulated"


@pytest.fixture
def simulated(settings: Any) -> Iterator[SimulatedCluster]:
    settings.SIMULATED_CLUSTER = True
    settings.FLUX_CLUSTER_CONNECTED = True
    settings.FLUX_HEARTBEAT_SECONDS = 1
    # slow enough for the page to show each state, as the demo does with its default 2 s steps
    with SimulatedCluster(step_seconds=0.5, tick_seconds=0.1) as cluster:
        yield cluster


def test_a_newcomer_sees_an_install_go_from_committed_to_ready(
    page, asgi_server, catalog, cast, simulated
):
    SHOTS.mkdir(parents=True, exist_ok=True)
    client = Client()
    client.force_login(cast["admin"])
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": asgi_server}]
    )
    page.goto(f"{asgi_server}/marketplace/bp-valkey/install/?environment=acme-prod")
    assert "Simulated cluster" in page.locator(".cluster-banner").inner_text()
    page.fill("#id_name", "web")
    page.click("main form button[type=submit] >> nth=-1")
    page.wait_for_selector("text=Files to commit")
    page.click("main form button[type=submit] >> nth=-1")
    page.wait_for_url("**/marketplace/apps/acme-prod/web/")

    status = page.locator("#app-status [data-app-state]").first
    seen = [status.get_attribute("data-app-state")]
    page.screenshot(path=str(SHOTS / "app-committed-1280.png"), full_page=True)
    for state in ("reconciling", "ready"):
        page.wait_for_selector(f'#app-status [data-app-state="{state}"]', timeout=30_000)
        seen.append(state)
    page.screenshot(path=str(SHOTS / "app-ready-1280.png"), full_page=True)
    assert seen[0] in ("committed", "reconciling") and seen[-1] == "ready"
    assert Application.objects.get(name="web").state == "ready"
    assert "Simulated cluster" in page.locator(".cluster-banner").inner_text()
    assert "InstallSucceeded" in page.locator("#app-status").inner_text()
    assert axe_violations(page) == []
    assert page.js_errors == []
