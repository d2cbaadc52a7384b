"""Real-browser tests: headless Chromium (Debian's package) driven by Playwright, against live_server."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.marketplace.conftest import catalog  # noqa: F401 (the starter catalog, synced)

# Playwright's sync API runs an event loop in this thread; the ORM calls in fixtures are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
HTMX = ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, which would break async_to_sync in the non-browser tests that run after it here.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) or not HTMX.exists():
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need {CHROMIUM} and `npm ci` (node_modules/htmx.org)")
        pytest.skip(f"needs {CHROMIUM} and node_modules (make assets)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=False)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.js_errors = errors
    yield page
    context.close()


def sign_in(page: Any, live_server: Any, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/orgs/")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations on the current page (axe-core from npm)."""
    page.evaluate(AXE.read_text() + "\n;window.__axeLoaded = true;")
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.fixture
def asgi_server(settings: Any) -> Iterator[str]:
    """The portal under uvicorn on loopback (SSE needs ASGI; live_server is WSGI)."""
    import uvicorn

    from gitops import events

    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    events.reset()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            "catalyst_portal.asgi:application",
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not started.wait(0.02):  # uvicorn exposes `started` as a flag only
        if server.started:
            started.set()
    yield f"http://127.0.0.1:{port}"
    # the page's EventSource is still open (the page fixture is torn down after this one): a
    # graceful exit would wait for that endless response until uvicorn's timeout
    server.should_exit = server.force_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive(), "uvicorn did not stop"
    events.reset()
