"""Two Flux changes of one Application handled at once (two watcher threads, or a watcher and a
worker): the state written last is computed from what Flux reports last. A HelmRelease that became
Ready never leaves the Application `failed` because an older reading was written after it."""

from __future__ import annotations

import pytest

from gitops import store
from marketplace import status as app_status
from marketplace.models import Application
from tests.marketplace.test_live_status import REGION, applied, install_web, raw
from tests.races import stale_reading_race

pytestmark = pytest.mark.django_db(transaction=True)
HELM_FAILED = "install retries exhausted"


def test_a_stale_failed_reading_never_overwrites_a_later_ready(
    catalog, cast, client_for, on_commit, monkeypatch
):
    app = install_web(client_for(cast["admin"]), on_commit)
    want = f"main@sha1:{app.last_commit_sha}"
    hr = {"namespace": "acme-prod"}
    store.apply(REGION, "Kustomization", "ADDED", applied(10, want))
    store.apply(
        REGION,
        "HelmRelease",
        "ADDED",
        raw(
            "HelmRelease",
            "web",
            11,
            ready="False",
            reason="InstallFailed",
            message=HELM_FAILED,
            **hr,
        ),
    )
    assert Application.objects.get(pk=app.pk).state == "failed"

    # Thread A handles a change and reads "failed"; before it writes, the HelmRelease becomes
    # Ready and that change is handled in this thread.
    failed_again = raw(
        "HelmRelease",
        "web",
        12,
        ready="False",
        reason="InstallFailed",
        message=HELM_FAILED + " (again)",
        **hr,
    )
    ready = raw("HelmRelease", "web", 13, ready="True", reason="InstallSucceeded", **hr)
    stale_reading_race(
        monkeypatch,
        app_status,
        "app_status",
        stale=lambda: store.apply(REGION, "HelmRelease", "MODIFIED", failed_again),
        fresh=lambda: store.apply(REGION, "HelmRelease", "MODIFIED", ready),
    )
    app.refresh_from_db()
    assert app.state == "ready", (app.state, app.status_message)


def test_a_status_refresh_and_a_change_lock_the_application_row_alone(
    catalog, cast, client_for, on_commit
):
    """Joined into the locking read, the Environment's and the Organization's rows were locked too:
    every status refresh and change of any Application of the Organization queued on them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite locks the whole database)")
    admin = client_for(cast["admin"])
    app = install_web(admin, on_commit)
    want = f"main@sha1:{app.last_commit_sha}"
    with CaptureQueriesContext(connection) as refresh:
        store.apply(REGION, "Kustomization", "ADDED", applied(30, want))
    with CaptureQueriesContext(connection) as change, on_commit():
        response = admin.post(
            "/api/v1/orgs/acme/environments/acme-prod/applications/web/resize",
            {"size": "large"},
            content_type="application/json",
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["size"], body["environment"], body["blueprint"]) == (
        "large",
        "acme-prod",
        "bp-valkey",
    )
    for captured in (refresh, change):
        locking = [q["sql"] for q in captured.captured_queries if "FOR UPDATE" in q["sql"]]
        mine = [sql for sql in locking if 'FROM "marketplace_application"' in sql]
        assert mine, locking
        assert not [sql for sql in mine if "JOIN" in sql], mine
    assert Application.objects.get(pk=app.pk).size == "large"
