"""Live status in a real browser: the htmx SSE extension swaps the fragment the server pushes.

SSE needs an ASGI server, so this runs uvicorn (as `manage.py serve` does) on loopback instead of
Django's WSGI live_server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from gitops import events, store
from gitops.models import FluxCluster

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def asgi_server(settings: Any) -> Iterator[str]:
    import uvicorn

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
    server.should_exit = True
    thread.join(timeout=10)
    events.reset()


def wait_for_subscribers(count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    gate = threading.Event()
    while events.broker().subscriber_count() < count:
        assert time.monotonic() < deadline, "the page did not open its SSE stream"
        gate.wait(0.02)


def test_org_page_swaps_live_status_pushed_over_sse(page, asgi_server, cast):
    FluxCluster.objects.create(
        name="hz-fsn-rtz-prod", connected=True, last_contact_at=timezone.now()
    )
    client = Client()
    client.force_login(cast["viewer"])
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": asgi_server}]
    )
    page.goto(f"{asgi_server}/orgs/acme/")
    assert (
        page.locator("#org-status [data-flux-state]").get_attribute("data-flux-state")
        == "committed"
    )
    wait_for_subscribers(1)

    acme = cast["acme"]
    want = f"main@sha1:{acme.last_commit_sha}"
    message = "Helm install failed for release acme/web with chart podinfo@6.5.4: context deadline exceeded"
    meta = {
        "name": "acme",
        "namespace": "flux-system",
        "generation": 1,
        "labels": {"openova.io/organization": "acme"},
    }

    def report(rv: int, ready: str, reason: str, msg: str, applied: str = "") -> None:
        store.apply(
            "hz-fsn-rtz-prod",
            "Kustomization",
            "MODIFIED",
            {
                "metadata": {**meta, "resourceVersion": str(rv)},
                "status": {
                    "observedGeneration": 1,
                    "lastAppliedRevision": applied,
                    "lastAttemptedRevision": want,
                    "conditions": [
                        {"type": "Ready", "status": ready, "reason": reason, "message": msg}
                    ],
                },
            },
        )

    report(900, "False", "HealthCheckFailed", message)
    page.wait_for_selector('#org-status [data-flux-state="failed"]', timeout=5000)
    assert message in page.locator("#org-status").inner_text()
    report(901, "True", "ReconciliationSucceeded", f"Applied revision: {want}", applied=want)
    page.wait_for_selector('#org-status [data-flux-state="ready"]', timeout=5000)
    assert "Ready" in page.locator("#org-status .badge").first.inner_text()
    assert page.js_errors == []
