"""End to end: the emulator's Flux moves the Organization's Kustomization; the watcher stores
it; the org page's SSE stream carries each step, the failure message verbatim."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.utils.html import escape

from gitops.models import FluxObject
from orgs.models import Organization
from tests.gitops.test_sse import open_stream

pytestmark = pytest.mark.django_db(transaction=True)


def test_emulated_flux_steps_reach_the_org_page_live(
    cast, kube, fluxd, start_watcher, changes, client_for
):
    acme = cast["acme"]
    want = f"main@sha1:{acme.last_commit_sha}"
    labels = {"openova.io/organization": "acme"}
    fluxd.create("GitRepository", "acme", labels=labels)
    fluxd.create("Kustomization", "acme", labels=labels)
    start_watcher()
    changes.wait(lambda: FluxObject.objects.filter(name="acme").count() == 2)

    async def scenario() -> None:
        _, stream = await open_stream(cast["viewer"])
        await stream.next_named()  # current state
        fluxd.dependency_not_ready("Kustomization", "acme", "flux-system/infra")
        step = await stream.next_named()
        assert (
            "DependencyNotReady" in step["data"]
            and "dependency &#x27;flux-system/infra&#x27; is not ready" in step["data"]
        )
        fluxd.source_not_found("Kustomization", "acme", "GitRepository/flux-system/acme")
        step = await stream.next_named()
        assert 'data-flux-state="failed"' in step["data"]
        assert escape("Source 'GitRepository/flux-system/acme' not found") in step["data"]
        fluxd.ready("GitRepository", "acme", want)
        fluxd.progressing("Kustomization", "acme", want)
        step = await stream.next_named()
        assert 'data-flux-state="reconciling"' in step["data"]
        fluxd.ready("Kustomization", "acme", want)
        step = await stream.next_named()
        assert 'data-flux-state="ready"' in step["data"] and ">Ready<" in step["data"]
        await stream.close()

    async_to_sync(scenario)()
    assert Organization.objects.get(pk=acme.pk).state == "ready"
    page = client_for(cast["viewer"]).get("/orgs/acme/").content.decode()
    assert 'data-flux-state="ready"' in page and f"Applied revision: {want}" in page


def test_build_failure_is_shown_verbatim_on_the_org_page(
    cast, kube, fluxd, start_watcher, changes, client_for
):
    acme = cast["acme"]
    want = f"main@sha1:{acme.last_commit_sha}"
    error = (
        "kustomize build failed: map[string]interface {}(nil): yaml: unmarshal errors:\n"
        "  line 3: cannot unmarshal !!seq into map[string]interface {}"
    )
    fluxd.create("Kustomization", "acme", labels={"openova.io/organization": "acme"})
    start_watcher()
    fluxd.build_failed("acme", want, error)
    changes.wait(lambda: Organization.objects.get(pk=acme.pk).state == "failed")
    html = client_for(cast["owner"]).get("/orgs/acme/").content.decode()
    assert "<code>BuildFailed</code>" in html and escape(error) in html
    assert client_for(cast["outsider"]).get("/orgs/acme/").status_code == 404
