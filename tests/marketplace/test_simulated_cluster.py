"""The demo cluster (`SIMULATED_CLUSTER=true`, gitops/simulated.py): an Application installed
through the portal goes from committed to Ready because the simulated Flux follows the commits in
Git and the ordinary watcher reports it; every page says the cluster is simulated, and without it
embedded pages say that no cluster is connected."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from gitops import naming
from gitops.kubesim import ApiError
from gitops.models import FluxCluster, FluxObject
from gitops.simulated import CLUSTER_NAME, SimulatedCluster
from gitops.sync import backend
from marketplace.models import Application
from orgs.models import Organization
from tests.marketplace.rbac_cases import INSTALL_FORM

APP_URL = "/marketplace/apps/acme-prod/web/"
LABELS = {
    "openova.io/organization": "acme",
    "openova.io/environment": "acme-prod",
    "openova.io/application": "web",
}


@pytest.fixture
def simulated(settings: Any, changes: Any) -> Iterator[SimulatedCluster]:
    settings.SIMULATED_CLUSTER = True
    settings.FLUX_CLUSTER_CONNECTED = True
    settings.FLUX_HEARTBEAT_SECONDS = 1
    with SimulatedCluster(step_seconds=0, tick_seconds=0.05) as cluster:
        yield cluster


def state_of(name: str = "web") -> str:
    app = Application.objects.filter(environment__name="acme-prod", name=name).first()
    return app.state if app else "gone"


def install(client: Any) -> Any:
    response = client.post("/marketplace/bp-valkey/install/", INSTALL_FORM)
    assert response.status_code == 302, response.content
    return client.post(response["Location"])


@pytest.mark.django_db(transaction=True)
def test_install_goes_from_committed_to_ready_on_the_simulated_cluster(
    catalog, cast, client_for, simulated, changes
):
    viewer = client_for(cast["viewer"])
    refused = viewer.post("/marketplace/bp-valkey/install/", INSTALL_FORM)
    assert refused.status_code == 403  # the wrong role is refused: nothing committed
    assert not Application.objects.filter(name="web").exists()

    done = install(client_for(cast["admin"]))
    assert done.status_code == 302 and done["Location"] == APP_URL
    app = Application.objects.get(environment__name="acme-prod", name="web")
    assert app.last_commit_sha

    changes.wait(lambda: state_of() == "ready", timeout=60)
    app.refresh_from_db()
    want = f"main@sha1:{app.last_commit_sha}"
    assert app.observed_revision == want

    # the simulated Flux applied what the portal rendered into Git, nothing else; a region is
    # ready only once its HelmRelease reported (each kind has its own watch stream, so the
    # GitRepository applied earlier may still be on its way to the watcher)
    def kinds() -> list[str]:
        return sorted(o.kind for o in FluxObject.objects.labelled(**LABELS).live())

    assert {"HelmRelease", "Kustomization"} <= set(kinds())
    changes.wait(lambda: kinds() == ["GitRepository", "HelmRelease", "Kustomization"], timeout=60)
    release = simulated.kube.store.get(
        simulated.kube.store.by_kind["HelmRelease"], "acme-prod", "web"
    )
    overlay = naming.overlay_dir("acme-prod", "hz-fsn-rtz-prod")
    rendered = backend().read_file("acme", "web", "main", f"{overlay}helmrelease.yaml")
    docs = {d["kind"]: d for d in yaml.safe_load_all(rendered)}
    assert release["spec"] == docs["HelmRelease"]["spec"]
    assert release["status"]["history"][0]["status"] == "deployed"
    assert FluxCluster.objects.get(name=CLUSTER_NAME).connected

    page = viewer.get(APP_URL).content.decode()
    assert 'data-app-state="ready"' in page and f"<code>{want}</code>" in page
    assert "Simulated cluster" in page
    timeline = page[page.index('id="timeline"') :]
    assert "HelmRelease web (hz-fsn-rtz-prod): Ready=True InstallSucceeded" in timeline
    # the Organization's CRs were applied by the catalyst-config Kustomization too
    changes.wait(lambda: Organization.objects.get(slug="acme").state == "ready", timeout=60)
    assert 'data-flux-state="ready"' in viewer.get("/orgs/acme/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_change_is_upgraded_and_an_uninstall_drained(
    catalog, cast, client_for, simulated, changes
):
    admin = client_for(cast["admin"])
    install(admin)
    changes.wait(lambda: state_of() == "ready", timeout=60)
    store = simulated.kube.store

    def release() -> dict[str, Any]:
        return store.get(store.by_kind["HelmRelease"], "acme-prod", "web")

    installed = release()["status"]["history"][0]
    assert (
        installed["version"] == 1 and release()["status"]["lastAttemptedReleaseAction"] == "install"
    )

    size = admin.post(f"{APP_URL}size/", {"size": "large", "confirm": "1"})
    assert size.status_code == 302, size.content
    changes.wait(
        lambda: (
            (a := Application.objects.get(name="web")).state == "ready"
            and a.observed_revision == f"main@sha1:{a.last_commit_sha}"
            and release()["status"]["history"][0]["version"] == 2
        ),
        timeout=60,
    )
    upgraded = release()["status"]
    # the values changed, not the HelmRelease's spec: a new config digest upgrades it
    assert upgraded["lastAttemptedReleaseAction"] == "upgrade"
    assert upgraded["history"][0]["configDigest"] != installed["configDigest"]
    assert [h["status"] for h in upgraded["history"]] == ["deployed", "superseded"]

    gone = admin.post(f"{APP_URL}uninstall/", {"confirm": "web"})
    assert gone.status_code == 302, gone.content
    changes.wait(lambda: state_of() == "gone", timeout=60)
    with pytest.raises(ApiError):
        store.get(store.by_kind["HelmRelease"], "acme-prod", "web")
    assert not FluxObject.objects.labelled(**LABELS).live().exists()


def _banner(html: str) -> str:
    found = re.search(r'<div class="cluster-banner[^"]*"[^>]*>(.*?)</div>', html, re.S)
    return re.sub(r"<[^>]+>", "", found[1]) if found else ""


@pytest.mark.django_db
def test_every_page_says_simulated_cluster_when_it_is_on(cast, client_for, settings):
    settings.SIMULATED_CLUSTER = True
    for client, url in [
        (client_for(None), "/login/"),
        (client_for(None), "/redeem/"),
        (client_for(cast["owner"]), "/orgs/acme/"),
        (client_for(cast["owner"]), "/marketplace/apps/"),
        (client_for(cast["owner"]), "/account/"),
        (client_for(cast["sovereign_operator"]), "/bss/"),
    ]:
        text = _banner(client.get(url).content.decode())
        assert "Simulated cluster" in text, url
        assert "nothing is deployed" in text, url


@pytest.mark.django_db
def test_embedded_pages_say_no_cluster_is_connected(cast, client_for, settings):
    settings.SIMULATED_CLUSTER = False
    settings.FLUX_CLUSTER_CONNECTED = False
    owner = client_for(cast["owner"])
    for url in ["/orgs/", "/orgs/acme/", "/marketplace/apps/", "/account/"]:
        assert "No cluster is connected" in _banner(owner.get(url).content.decode()), url
    FluxCluster.objects.create(name="hz-fsn-rtz-prod", connected=True)
    assert _banner(owner.get("/orgs/acme/").content.decode()) == ""
