"""Live status in a real browser: the htmx SSE extension swaps the fragment the server pushes.

SSE needs an ASGI server, so this runs uvicorn (as `manage.py serve` does) on loopback instead of
Django's WSGI live_server."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import Client
from django.utils import timezone

from gitops import events, naming, store
from gitops.models import FluxCluster

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_app_page_swaps_live_status_pushed_over_sse(page, asgi_server, cast):
    from django.conf import settings

    from marketplace import loader, services
    from marketplace.models import Application, BlueprintVersion, CatalogSource
    from orgs.models import Environment

    source = CatalogSource.objects.create(
        name="public", kind="directory", location=str(settings.CATALOG_DIR)
    )
    loader.sync_source(source)
    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    app = services.install(  # transactional test: the delivery runs on commit, here
        by=cast["admin"],
        env=Environment.objects.get(name="acme-prod"),
        version=version,
        name="web",
        values={},
    )
    app.refresh_from_db()
    assert app.state == "committed" and app.last_commit_sha
    want = f"main@sha1:{app.last_commit_sha}"
    region = app.regions[0]
    labels = {
        "openova.io/organization": "acme",
        "openova.io/environment": "acme-prod",
        "openova.io/application": "web",
        "openova.io/host-cluster": region,
    }

    client = Client()
    client.force_login(cast["viewer"])
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": asgi_server}]
    )
    page.goto(f"{asgi_server}/marketplace/apps/acme-prod/web/")
    assert page.locator("#app-status [data-app-state]").get_attribute("data-app-state") == (
        "committed"
    )
    wait_for_subscribers(1)

    def report(kind: str, name: str, ns: str, rv: int, ready: str, reason: str, msg: str) -> None:
        status = {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": msg}],
        }
        if kind == "Kustomization":
            status["lastAppliedRevision"] = status["lastAttemptedRevision"] = want
        else:
            status["lastAttemptedRevision"] = "6.5.4"
        meta = {"name": name, "namespace": ns, "generation": 1, "labels": labels}
        store.apply(
            region,
            kind,
            "ADDED",
            {"metadata": {**meta, "resourceVersion": str(rv)}, "status": status},
        )

    message = (
        "Helm install failed for release acme-prod/web with chart valkey@2.0.0: "
        'pod "web-0" CrashLoopBackOff'
    )
    report(
        "Kustomization",
        naming.flux_object_name("acme", "acme-prod", "web", region),
        "flux-system",
        700,
        "True",
        "ReconciliationSucceeded",
        f"Applied revision: {want}",
    )
    report("HelmRelease", "web", "acme-prod", 701, "False", "InstallFailed", message)
    page.wait_for_selector('#app-status [data-app-state="failed"]', timeout=5000)
    assert message in page.locator("#app-status").inner_text()
    report(
        "HelmRelease", "web", "acme-prod", 702, "True", "InstallSucceeded", "Helm install succeeded"
    )
    page.wait_for_selector('#app-status [data-app-state="ready"]', timeout=5000)
    assert Application.objects.get(pk=app.pk).state == "ready"
    assert page.js_errors == []
