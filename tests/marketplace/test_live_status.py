"""An Application's live status: install through the UI, the emulator's Flux moves its objects,
the Application's state, Flux's message verbatim, the page and the SSE stream follow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.utils.html import escape

from core.models import AuditEvent
from gitops import naming, store
from gitops.models import FluxObject
from marketplace.models import Application
from tests.gitops.test_sse import Stream
from tests.marketplace.rbac_cases import INSTALL_FORM

REGION = "hz-fsn-rtz-prod"
LABELS = {
    "openova.io/organization": "acme",
    "openova.io/environment": "acme-prod",
    "openova.io/application": "web",
    "openova.io/managed-by": "flux",
}
REGIONAL = {**LABELS, "openova.io/host-cluster": REGION}
KUSTOMIZATION = naming.flux_object_name("acme", "acme-prod", "web", REGION)
SOURCE = naming.flux_object_name("acme", "acme-prod", "web")
APP_URL = "/marketplace/apps/acme-prod/web/"
STREAM_URL = "/events/apps/acme/acme-prod/web/"
HELM_ERROR = (
    'timed out waiting for the condition: pod "web-valkey-0" is CrashLoopBackOff (exit 137)'
)


def applied(rv: int, revision: str) -> dict[str, Any]:
    """The Application's Kustomization, Ready at `revision`."""
    return raw(
        "Kustomization",
        KUSTOMIZATION,
        rv,
        ready="True",
        reason="ReconciliationSucceeded",
        message=f"Applied revision: {revision}",
        revision=revision,
    )


def install_web(client: Any, on_commit: Any) -> Application:
    """Install bp-valkey as acme-prod/web through the form, the plan preview and the confirm."""
    response = client.post("/marketplace/bp-valkey/install/", INSTALL_FORM)
    assert response.status_code == 302, response.content
    with on_commit():
        done = client.post(response["Location"])
    assert done.status_code == 302 and done["Location"] == APP_URL
    app = Application.objects.get(environment__name="acme-prod", name="web")
    assert app.state == "committed" and app.last_commit_sha
    return app


async def open_app_stream(user: Any, url: str = STREAM_URL) -> tuple[Any, Stream | None]:
    client = AsyncClient()
    if user is not None:
        await client.aforce_login(user)
    response = await client.get(url)
    if response.status_code != 200:
        return response, None
    return response, Stream(response)


async def until(stream: Stream, text: str) -> str:
    """Read named events until one carries `text` (each Flux change publishes one)."""
    for _ in range(20):
        event = await stream.next_named()
        assert event["event"] == "app-status"
        if text in event["data"]:
            return event["data"]
    raise AssertionError(f"no event with {text!r}")


@pytest.mark.django_db(transaction=True)
def test_install_then_emulated_flux_steps_reach_the_app_page_live(
    catalog, cast, client_for, on_commit, kube, fluxd, start_watcher, changes
):
    admin = client_for(cast["admin"])
    app = install_web(admin, on_commit)
    want = f"main@sha1:{app.last_commit_sha}"
    page = client_for(cast["viewer"]).get(APP_URL).content.decode()
    assert 'data-app-state="committed"' in page and f'sse-connect="{STREAM_URL}"' in page

    fluxd.create("GitRepository", SOURCE, labels=LABELS)
    fluxd.create("Kustomization", KUSTOMIZATION, labels=REGIONAL)
    fluxd.create("HelmRelease", "web", namespace="acme-prod", labels=REGIONAL)
    start_watcher(REGION)
    changes.wait(lambda: FluxObject.objects.labelled(**LABELS).count() == 3)
    message = (
        f"Helm install failed for release acme-prod/web with chart podinfo@6.5.4: {HELM_ERROR}"
    )

    async def scenario() -> None:
        _, stream = await open_app_stream(cast["viewer"])
        first = await stream.next_named()
        assert first["event"] == "app-status" and "data-app-state" in first["data"]
        fluxd.ready("GitRepository", SOURCE, want)
        fluxd.progressing("Kustomization", KUSTOMIZATION, want)
        step = await until(stream, 'data-app-state="reconciling"')
        assert "Progressing" in step
        fluxd.install_failed("web", "6.5.4", HELM_ERROR, namespace="acme-prod")
        step = await until(stream, 'data-app-state="failed"')
        assert "<code>InstallFailed</code>" in step and escape(message) in step
        fluxd.ready("Kustomization", KUSTOMIZATION, want)
        fluxd.ready("HelmRelease", "web", "6.5.4", namespace="acme-prod")
        step = await until(stream, 'data-app-state="ready"')
        assert f"<code>{want}</code>" in step
        await stream.close()

    async_to_sync(scenario)()
    app.refresh_from_db()
    assert app.state == "ready" and app.observed_revision == want
    assert app.conditions[0]["region"] == REGION and app.conditions[0]["state"] == "ready"
    failed = AuditEvent.objects.get(
        action="applications.reconcile", target_id=str(app.pk), after__state="failed"
    )
    assert failed.actor is None and failed.after["message"] == message
    page = client_for(cast["viewer"]).get(APP_URL).content.decode()
    assert 'data-app-state="ready"' in page
    # the timeline: portal action → task → commit → Flux conditions, in that order
    steps = page[page.index('id="timeline"') :]
    order = [
        steps.index("applications.install"),
        steps.index("Task marketplace.tasks.sync_application_task queued"),
        steps.index(f"Commit {app.last_commit_sha}"),
        steps.index("HelmRelease web (hz-fsn-rtz-prod): Ready=False InstallFailed"),
        steps.index("HelmRelease web (hz-fsn-rtz-prod): Ready=True InstallSucceeded"),
    ]
    assert order == sorted(order) and escape(message) in steps


def raw(
    kind: str,
    name: str,
    rv: int,
    *,
    ready: str,
    reason: str,
    message: str = "",
    revision: str = "",
    namespace: str = "flux-system",
    labels: dict[str, str] = REGIONAL,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}],
    }
    if kind == "Kustomization":
        status["lastAppliedRevision"] = status["lastAttemptedRevision"] = revision
    elif kind == "HelmRelease":
        status["lastAttemptedRevision"] = "6.5.4"
    else:
        status["artifact"] = {"revision": revision}
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(rv),
            "generation": 1,
            "labels": labels,
        },
        "status": status,
    }


@pytest.mark.django_db
def test_an_old_revisions_ready_is_not_ready(catalog, cast, client_for, on_commit):
    app = install_web(client_for(cast["admin"]), on_commit)
    want = f"main@sha1:{app.last_commit_sha}"
    old = "main@sha1:" + "0" * 40
    store.apply(
        REGION,
        "HelmRelease",
        "ADDED",
        raw(
            "HelmRelease", "web", 10, ready="True", reason="InstallSucceeded", namespace="acme-prod"
        ),
    )
    store.apply(
        REGION,
        "Kustomization",
        "ADDED",
        applied(11, old),
    )
    app.refresh_from_db()
    assert app.state == "reconciling" and app.observed_revision == old
    page = client_for(cast["viewer"]).get(APP_URL).content.decode()
    assert 'data-app-state="reconciling"' in page and f"Applied revision: {old}" in page
    store.apply(
        REGION,
        "Kustomization",
        "MODIFIED",
        applied(12, want),
    )
    app.refresh_from_db()
    assert app.state == "ready" and app.status_message == f"Applied revision: {want}"
    # the organization's own status is not taken over by its Applications' Kustomizations
    from orgs import status as org_status

    assert org_status.flux_objects(cast["acme"]) == []


@pytest.mark.django_db
def test_a_region_is_not_ready_before_its_helmrelease_is_seen(catalog, cast, client_for, on_commit):
    """The watcher follows each kind on its own stream: the Kustomization that applied the
    revision can be stored before the HelmRelease it created. Until the release reports, the
    region is reconciling, not ready."""
    app = install_web(client_for(cast["admin"]), on_commit)
    want = f"main@sha1:{app.last_commit_sha}"
    store.apply(REGION, "Kustomization", "ADDED", applied(20, want))
    app.refresh_from_db()
    assert app.state == "reconciling"
    assert app.status_message == "Waiting for Flux to report HelmRelease web."
    assert [(r["region"], r["state"]) for r in app.conditions] == [(REGION, "reconciling")]
    page = client_for(cast["viewer"]).get(APP_URL).content.decode()
    assert 'data-app-state="reconciling"' in page
    store.apply(
        REGION,
        "HelmRelease",
        "ADDED",
        raw("HelmRelease", "web", 21, ready="Unknown", reason="Progressing", namespace="acme-prod"),
    )
    app.refresh_from_db()
    assert app.state == "reconciling" and app.status_reason == "Progressing"
    store.apply(
        REGION,
        "HelmRelease",
        "MODIFIED",
        raw(
            "HelmRelease", "web", 22, ready="True", reason="InstallSucceeded", namespace="acme-prod"
        ),
    )
    app.refresh_from_db()
    assert app.state == "ready" and app.observed_revision == want


@pytest.mark.django_db
def test_uninstall_completes_only_when_the_flux_objects_are_gone(
    catalog, cast, client_for, on_commit, settings
):
    settings.FLUX_CLUSTER_CONNECTED = True
    admin = client_for(cast["admin"])
    app = install_web(admin, on_commit)
    want = f"main@sha1:{app.last_commit_sha}"
    objects = [
        ("GitRepository", SOURCE, "flux-system", LABELS, want),
        ("Kustomization", KUSTOMIZATION, "flux-system", REGIONAL, want),
        ("HelmRelease", "web", "acme-prod", REGIONAL, ""),
    ]
    for rv, (kind, name, ns, labels, revision) in enumerate(objects, start=20):
        store.apply(
            REGION,
            kind,
            "ADDED",
            raw(
                kind,
                name,
                rv,
                ready="True",
                reason="Succeeded",
                revision=revision,
                namespace=ns,
                labels=labels,
            ),
        )
    assert Application.objects.get(pk=app.pk).state == "ready"
    viewer = client_for(cast["viewer"]).post(APP_URL + "uninstall/", {"confirm": "web"})
    assert viewer.status_code == 403
    with on_commit():
        done = admin.post(APP_URL + "uninstall/", {"confirm": "web"})
    assert done.status_code == 302
    assert Application.objects.get(pk=app.pk).state == "uninstalling"
    for rv, (kind, name, ns, labels, revision) in enumerate(objects[:2], start=30):
        store.apply(
            REGION,
            kind,
            "DELETED",
            raw(
                kind,
                name,
                rv,
                ready="True",
                reason="Succeeded",
                revision=revision,
                namespace=ns,
                labels=labels,
            ),
        )
        assert Application.objects.get(pk=app.pk).state == "uninstalling"  # one still there
    kind, name, ns, labels, revision = objects[2]
    store.apply(
        REGION,
        kind,
        "DELETED",
        raw(kind, name, 40, ready="True", reason="Succeeded", namespace=ns, labels=labels),
    )
    assert not Application.objects.filter(pk=app.pk).exists()
    drained = AuditEvent.objects.get(action="applications.drained", target_id=str(app.pk))
    assert drained.actor is None
    assert admin.get(APP_URL).status_code == 404


@pytest.mark.django_db
def test_app_stream_is_filtered_by_access(catalog, cast, client_for, on_commit):
    install_web(client_for(cast["admin"]), on_commit)

    async def scenario() -> None:
        response, _ = await open_app_stream(cast["member_b"])
        assert response.status_code == 404
        response, _ = await open_app_stream(cast["developer"])  # dev-scoped: prod is hidden
        assert response.status_code == 404
        response, _ = await open_app_stream(None)
        assert response.status_code == 401
        response, _ = await open_app_stream(cast["viewer"], "/events/apps/globex/acme-prod/web/")
        assert response.status_code == 404  # the org in the URL must be the app's
        response, stream = await open_app_stream(cast["viewer"])
        assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
        first = await asyncio.wait_for(stream.next_named(), 5)
        assert 'data-app-state="committed"' in first["data"]
        await stream.close()

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_each_region_is_judged_and_the_worst_is_the_apps_state(
    catalog, cast, client_for, on_commit, acme_prod
):
    from django.utils import timezone

    from gitops.models import FluxCluster
    from marketplace import services
    from marketplace.models import BlueprintVersion
    from orgs.models import HostCluster

    other = "hz-hel-rtz-prod"
    acme_prod.regions.add(HostCluster.objects.get(name=other))
    with on_commit():
        app = services.install(
            by=cast["admin"],
            env=acme_prod,
            version=BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0"),
            name="web",
            values={},
            placement="active-active",
            regions=[REGION, other],
        )
    app.refresh_from_db()
    want = f"main@sha1:{app.last_commit_sha}"
    FluxCluster.objects.create(name=REGION, connected=True, last_contact_at=timezone.now())
    FluxCluster.objects.create(name=other, connected=False)
    ready = {"ready": "True", "reason": "ReconciliationSucceeded", "revision": want}
    store.apply(REGION, "Kustomization", "ADDED", raw("Kustomization", KUSTOMIZATION, 50, **ready))
    release = raw("HelmRelease", "web", 49, **ready, namespace="acme-prod")
    store.apply(REGION, "HelmRelease", "ADDED", release)
    app.refresh_from_db()
    # the second region has not reported yet: the app is not ready
    assert app.state == "committed"
    assert [(r["region"], r["state"]) for r in app.conditions] == [
        (REGION, "ready"),
        (other, "committed"),
    ]
    error = "Health check failed after 10m0s: timeout waiting for: [HelmRelease/acme-prod/web status: 'Failed']"
    store.apply(
        other,
        "Kustomization",
        "ADDED",
        raw(
            "Kustomization",
            naming.flux_object_name("acme", "acme-prod", "web", other),
            51,
            ready="False",
            reason="HealthCheckFailed",
            message=error,
            revision="",
            labels={**LABELS, "openova.io/host-cluster": other},
        ),
    )
    app.refresh_from_db()
    assert app.state == "failed" and app.status_reason == "HealthCheckFailed"
    assert app.status_message == error
    api = client_for(cast["viewer"]).get(
        "/api/v1/orgs/acme/environments/acme-prod/applications/web/"
    )
    assert api.status_code == 200
    body = api.json()
    assert (body["state"], body["status_reason"], body["status_message"]) == (
        "failed",
        "HealthCheckFailed",
        error,
    )
    assert [r["state"] for r in body["conditions"]] == ["ready", "failed"]
    page = client_for(cast["viewer"]).get(APP_URL).content.decode()
    assert escape(error) in page and f"Connection to cluster {other} lost since" in page
    assert f"Connection to cluster {REGION} lost" not in page


@pytest.mark.django_db
def test_an_uninstall_drained_at_once_reaches_the_stream_as_gone(
    catalog, cast, client_for, on_commit, settings
):
    """With no cluster to wait for, the delivery of an uninstall removes the row at once; the
    Application's stream is told, and shows it gone (it was told nothing: the row it would have
    read was already gone)."""
    from asgiref.sync import sync_to_async

    settings.FLUX_CLUSTER_CONNECTED = False
    settings.SSE_MAX_SECONDS = 15  # a stream that is never told ends, and the test fails
    admin = client_for(cast["admin"])
    install_web(admin, on_commit)

    def uninstall() -> Any:
        with on_commit():
            return admin.post(APP_URL + "uninstall/", {"confirm": "web"})

    async def scenario() -> None:
        _, stream = await open_app_stream(cast["viewer"])
        first = await stream.next_named()
        assert 'data-app-state="committed"' in first["data"]
        done = await sync_to_async(uninstall)()
        assert done.status_code == 302
        gone = await until(stream, 'data-app-state="gone"')
        assert gone.strip() == '<p data-app-state="gone">Uninstalled.</p>'
        await stream.close()

    async_to_sync(scenario)()
    assert not Application.objects.filter(name="web").exists()
    assert AuditEvent.objects.filter(action="applications.drained").count() == 1
