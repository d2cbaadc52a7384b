"""The Organization consumer: Flux status → Organization state, page shows it verbatim."""

from __future__ import annotations

import pytest

from core.models import AuditEvent
from gitops import store
from gitops.models import FluxCluster
from orgs.models import Organization
from tests.gitutil import git

ORG_LABEL = "openova.io/organization"


def kustomization(
    rv: int,
    *,
    ready: str,
    reason: str,
    message: str,
    applied: str = "",
    attempted: str = "",
    slug: str = "acme",
    name: str = "org-acme",
) -> dict:
    labels = (
        {ORG_LABEL: slug, "openova.io/managed-by": "flux"}
        if slug
        else {"openova.io/managed-by": "flux"}
    )
    return {
        "metadata": {
            "name": name,
            "namespace": "flux-system",
            "resourceVersion": str(rv),
            "generation": 1,
            "labels": labels,
        },
        "status": {
            "observedGeneration": 1,
            "lastAppliedRevision": applied,
            "lastAttemptedRevision": attempted or applied,
            "conditions": [
                {"type": "Ready", "status": ready, "reason": reason, "message": message}
            ],
        },
    }


def connected_cluster() -> None:
    from django.utils import timezone

    FluxCluster.objects.create(
        name="hz-fsn-rtz-prod", connected=True, last_contact_at=timezone.now()
    )


@pytest.mark.django_db
def test_org_is_ready_only_when_flux_applied_the_committed_revision(cast, client_for):
    connected_cluster()
    acme = cast["acme"]
    assert acme.state == "provisioning"
    older = git("system", "catalyst-config", "rev-list", "--max-parents=0", "main").split()[0]
    assert older != acme.last_commit_sha
    store.apply(
        "hz-fsn-rtz-prod",
        "Kustomization",
        "ADDED",
        kustomization(
            201,
            ready="True",
            reason="ReconciliationSucceeded",
            message=f"Applied revision: main@sha1:{older}",
            applied=f"main@sha1:{older}",
        ),
    )
    assert (
        Organization.objects.get(pk=acme.pk).state == "provisioning"
    )  # an old revision's Ready=True
    page = client_for(cast["viewer"]).get("/orgs/acme/")
    assert b'data-flux-state="reconciling"' in page.content

    want = f"main@sha1:{acme.last_commit_sha}"
    store.apply(
        "hz-fsn-rtz-prod",
        "Kustomization",
        "MODIFIED",
        kustomization(
            202,
            ready="True",
            reason="ReconciliationSucceeded",
            message=f"Applied revision: {want}",
            applied=want,
        ),
    )
    assert Organization.objects.get(pk=acme.pk).state == "ready"
    event = AuditEvent.objects.get(action="organization.reconcile", org_slug="acme")
    assert (
        event.before == {"state": "provisioning"}
        and event.after["state"] == "ready"
        and event.actor is None
    )
    page = client_for(cast["viewer"]).get("/orgs/acme/")
    assert b'data-flux-state="ready"' in page.content and b">Ready<" in page.content
    assert client_for(cast["outsider"]).get("/orgs/acme/").status_code == 404


@pytest.mark.django_db
def test_failure_reason_and_message_are_shown_verbatim(cast, client_for):
    connected_cluster()
    acme = cast["acme"]
    want = f"main@sha1:{acme.last_commit_sha}"
    message = (
        "kustomize build failed: accumulating resources: accumulation err='accumulating resources "
        'from "./organizations/acme"\': <missing> environment.yaml & co'
    )
    store.apply(
        "hz-fsn-rtz-prod",
        "Kustomization",
        "ADDED",
        kustomization(301, ready="False", reason="BuildFailed", message=message, attempted=want),
    )
    org = Organization.objects.get(pk=acme.pk)
    assert org.state == "failed"
    assert AuditEvent.objects.get(action="organization.reconcile").after["message"] == message
    page = client_for(cast["owner"]).get("/orgs/acme/")
    html = page.content.decode()
    assert 'data-flux-state="failed"' in html and "<code>BuildFailed</code>" in html
    from django.utils.html import escape

    assert escape(message) in html
    # globex is untouched, and its owner cannot see acme's page
    assert Organization.objects.get(slug="globex").state == "provisioning"
    assert client_for(cast["member_b"]).get("/orgs/acme/").status_code == 404


@pytest.mark.django_db
def test_shared_config_kustomization_counts_when_its_revision_contains_the_commit(
    cast, settings, on_commit
):
    from orgs import services

    connected_cluster()
    with on_commit():
        services.rename_organization(by=cast["owner"], org=cast["acme"], display_name="Acme Two")
    settings.FLUX_CONFIG_KUSTOMIZATION = "flux-system/catalyst-config"
    head = git("system", "catalyst-config", "rev-parse", "main").strip()
    globex = Organization.objects.get(slug="globex")
    assert head != globex.last_commit_sha  # acme's grants were committed after globex
    store.apply(
        "hz-fsn-rtz-prod",
        "Kustomization",
        "ADDED",
        kustomization(
            401,
            ready="True",
            reason="ReconciliationSucceeded",
            message="ok",
            applied=f"main@sha1:{head}",
            slug="",
            name="catalyst-config",
        ),
    )
    assert Organization.objects.get(slug="acme").state == "ready"
    assert Organization.objects.get(slug="globex").state == "ready"


@pytest.mark.django_db
def test_lost_cluster_is_said_on_the_page(cast, client_for):
    from django.utils import timezone

    FluxCluster.objects.create(
        name="hz-fsn-rtz-prod",
        connected=False,
        since=timezone.now(),
        last_error="connection refused",
    )
    html = client_for(cast["viewer"]).get("/orgs/acme/").content.decode()
    assert "Connection to cluster hz-fsn-rtz-prod lost since" in html


@pytest.mark.django_db
def test_without_any_cluster_the_page_says_no_cluster_connected(cast, client_for):
    html = client_for(cast["viewer"]).get("/orgs/acme/").content.decode()
    assert "no cluster connected" in html and "data-flux-state" not in html
