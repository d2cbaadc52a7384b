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
