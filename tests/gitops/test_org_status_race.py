"""Two Flux changes of one Organization handled at once (two watcher threads: two clusters, or a
relist beside a watch): the state written last is computed from what Flux reports last, under
the Organization's row lock. A Kustomization that became Ready never leaves the Organization
`failed` because an older reading was written after it (PostgreSQL, real threads)."""

from __future__ import annotations

import pytest
from django.db import connection

from core.models import AuditEvent
from gitops import store
from orgs import status as org_status
from orgs.models import Organization
from tests.gitops.test_org_status import connected_cluster, kustomization
from tests.races import stale_reading_race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CLUSTER = "hz-fsn-rtz-prod"
FAILED = "kustomize build failed: accumulating resources"


def test_a_stale_failed_reading_never_overwrites_a_later_ready(cast, client_for, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite serialises writers anyway")
    connected_cluster()
    acme = cast["acme"]
    want = f"main@sha1:{acme.last_commit_sha}"
    assert Organization.objects.get(pk=acme.pk).state == "provisioning"

    # Thread A handles a change and reads "failed"; before it writes, the Kustomization becomes
    # Ready (Flux retried) and that change is handled in this thread.
    failed = kustomization(10, ready="False", reason="BuildFailed", message=FAILED, attempted=want)
    ready = kustomization(
        11,
        ready="True",
        reason="ReconciliationSucceeded",
        message=f"Applied revision: {want}",
        applied=want,
    )
    stale_reading_race(
        monkeypatch,
        org_status,
        "org_status",
        stale=lambda: store.apply(CLUSTER, "Kustomization", "ADDED", failed),
        fresh=lambda: store.apply(CLUSTER, "Kustomization", "MODIFIED", ready),
    )
    org = Organization.objects.get(pk=acme.pk)
    assert org.state == "ready"
    last = AuditEvent.objects.filter(action="organization.reconcile").order_by("pk").last()
    assert last is not None and last.after["state"] == "ready"
    page = client_for(cast["viewer"]).get("/orgs/acme/")
    assert b'data-flux-state="ready"' in page.content
    assert client_for(cast["outsider"]).get("/orgs/acme/").status_code == 404
