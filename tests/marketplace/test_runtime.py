"""Runtime status on the Application page, per region, as Flux reports it through the watch:
the HelmRelease's chart version, last attempted and deployed revision, remediation counts, the
Kustomization's revisions, and the Kubernetes Events the Flux controllers recorded."""

from __future__ import annotations

import pytest
import yaml
from django.utils.html import escape

from gitops.models import FluxObject, ObjectEvent
from tests.gitutil import show
from tests.marketplace.test_live_status import KUSTOMIZATION, LABELS, REGION, REGIONAL, install_web

APP_URL = "/marketplace/apps/acme-prod/web/"


@pytest.mark.django_db(transaction=True)
def test_runtime_per_region_from_the_watch(
    catalog, cast, client_for, on_commit, kube, fluxd, start_watcher, changes
):
    app = install_web(client_for(cast["admin"]), on_commit)
    want = f"main@sha1:{app.last_commit_sha}"
    committed = list(
        yaml.safe_load_all(show(f"overlays/acme-prod/{REGION}/helmrelease.yaml", "acme", "web"))
    )[1]
    # the emulated cluster runs the HelmRelease the portal committed (bitnami valkey 2.0.1)
    fluxd.create("Kustomization", KUSTOMIZATION, labels=REGIONAL)
    fluxd.create(
        "HelmRelease", "web", namespace="acme-prod", labels=REGIONAL, spec=committed["spec"]
    )
    fluxd.ready("Kustomization", KUSTOMIZATION, want)
    fluxd.ready("HelmRelease", "web", "2.0.1", namespace="acme-prod")
    fluxd.event(
        "HelmRelease",
        "web",
        "InstallSucceeded",
        "Helm install succeeded for release acme-prod/web.v1 with chart valkey@2.0.1",
        namespace="acme-prod",
    )
    start_watcher(REGION)  # events recorded before the watcher started come with its first list
    changes.wait(lambda: ObjectEvent.objects.filter(reason="InstallSucceeded").exists())
    changes.wait(
        lambda: FluxObject.objects.filter(kind="HelmRelease", details__chart="valkey").exists()
    )
    error = "pre-upgrade hooks failed: timed out waiting for the condition"
    fluxd.upgrade_failed("web", error, failures=2, namespace="acme-prod")
    for _ in range(2):  # the same failure twice: one Event, counted
        fluxd.event(
            "HelmRelease", "web", "UpgradeFailed", error, type_="Warning", namespace="acme-prod"
        )
    changes.wait(lambda: ObjectEvent.objects.filter(reason="UpgradeFailed", count=2).exists())
    changes.wait(
        lambda: FluxObject.objects.filter(kind="HelmRelease", details__upgradeFailures=2).exists()
    )
    page = client_for(cast["viewer"]).get(APP_URL).content.decode()
    section = page[page.index(f'data-region="{REGION}"') :]
    assert "<code>acme-prod/web</code>: chart valkey 2.0.1" in section
    assert "data-attempted>2.0.1 (upgrade)" in section
    assert "data-deployed>valkey 2.0.1, Helm revision 1" in section
    assert "install failures 0 of 3 retries, upgrade failures 2 of 3 retries" in section
    assert "<code>Ready=False</code> UpgradeFailed" in section
    assert f"applied <code>{want}</code>" in section
    events = section[section.index("Events recorded by Flux") :]
    assert 'data-event-type="Warning"' in events and "<code>UpgradeFailed</code>" in events
    assert escape(error) in events and "×2" in events and "(helm-controller)" in events
    assert events.index("UpgradeFailed") < events.index("InstallSucceeded")  # newest first
    # the same rules as the page: a developer does not see prod, another Organization neither
    assert client_for(cast["developer"]).get(APP_URL).status_code == 404
    assert client_for(cast["member_b"]).get(APP_URL).status_code == 404
    assert set(ObjectEvent.objects.values_list("cluster", flat=True)) == {REGION}
    assert FluxObject.objects.labelled(**LABELS).count() == 2
