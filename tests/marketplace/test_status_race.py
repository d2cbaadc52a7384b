"""Two Flux changes of one Application handled at once (two watcher threads, or a watcher and a
worker): the state written last is computed from what Flux reports last. A HelmRelease that became
Ready never leaves the Application `failed` because an older reading was written after it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from gitops import store
from marketplace import status as app_status
from marketplace.models import Application
from tests.marketplace.test_live_status import REGION, applied, install_web, raw

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
    computed, go = threading.Event(), threading.Event()
    real = app_status.app_status

    def slow_reading(*args: Any, **kwargs: Any) -> Any:
        reading = real(*args, **kwargs)
        if threading.current_thread().name == "watcher-a" and not computed.is_set():
            computed.set()
            go.wait(10)
        return reading

    monkeypatch.setattr(app_status, "app_status", slow_reading)

    def watcher_a() -> None:
        try:
            store.apply(
                REGION,
                "HelmRelease",
                "MODIFIED",
                raw(
                    "HelmRelease",
                    "web",
                    12,
                    ready="False",
                    reason="InstallFailed",
                    message=HELM_FAILED + " (again)",
                    **hr,
                ),
            )
        finally:
            connection.close()

    a = threading.Thread(target=watcher_a, name="watcher-a")
    a.start()
    assert computed.wait(10)
    release = threading.Timer(1.0, go.set)  # this thread may block on A's lock meanwhile
    release.start()
    store.apply(
        REGION,
        "HelmRelease",
        "MODIFIED",
        raw("HelmRelease", "web", 13, ready="True", reason="InstallSucceeded", **hr),
    )
    go.set()
    a.join(10)
    release.cancel()
    app.refresh_from_db()
    assert app.state == "ready", (app.state, app.status_message)
