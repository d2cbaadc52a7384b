"""The Flux watcher against the apiserver emulator, including the faults of issue 5."""

from __future__ import annotations

import pytest
from django.db import connection
from kubernetes import client

from gitops import flux
from gitops.models import FluxCluster, FluxEvent, FluxObject
from tests.pooling import checked_out, small_pool, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

REV1 = "main@sha1:" + "1" * 40
REV2 = "main@sha1:" + "2" * 40
ORG = {"openova.io/organization": "acme"}


def obj(kind: str, name: str, cluster: str = "hz-fsn-rtz-prod") -> FluxObject | None:
    return FluxObject.objects.filter(cluster=cluster, kind=kind, name=name).first()


def test_list_then_watch_stores_conditions_revisions_and_timeline(
    kube, fluxd, start_watcher, changes
):
    fluxd.create("Kustomization", "acme", labels=ORG)
    fluxd.create("GitRepository", "acme", labels=ORG)
    fluxd.create("Kustomization", "not-ours").get("metadata")
    kube.store.patch(
        kube.store.resource("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
        "flux-system",
        "not-ours",
        {"metadata": {"labels": {"openova.io/managed-by": "someone-else"}}},
    )
    start_watcher()
    changes.wait(lambda: obj("Kustomization", "acme") and obj("GitRepository", "acme"))
    fluxd.progressing("Kustomization", "acme", REV1)
    fluxd.ready("GitRepository", "acme", REV1)
    fluxd.ready("Kustomization", "acme", REV1)

    ks = changes.wait(
        lambda: (o := obj("Kustomization", "acme")) and o.ready_status == "True" and o
    )
    assert ks.applied_revision == REV1 and ks.ready_reason == "ReconciliationSucceeded"
    assert ks.ready_message == f"Applied revision: {REV1}"
    assert ks.labels["openova.io/organization"] == "acme"
    assert ks.generation == 1 and ks.observed_generation == 1
    git = changes.wait(lambda: (o := obj("GitRepository", "acme")) and o.artifact_revision and o)
    assert git.artifact_revision == REV1
    timeline = list(FluxEvent.objects.filter(obj=ks, type="Ready").values_list("status", "reason"))
    assert timeline == [("Unknown", "Progressing"), ("True", "ReconciliationSucceeded")]
    assert obj("Kustomization", "not-ours") is None  # filtered by the label selector
    cluster = FluxCluster.objects.get(name="hz-fsn-rtz-prod")
    assert cluster.connected and cluster.is_healthy and cluster.last_event_at is not None


def test_the_official_client_can_create_replace_patch_and_is_refused_a_stale_write(kube):
    api = client.CustomObjectsApi(kube.api_client())
    group, version, plural = "kustomize.toolkit.fluxcd.io", "v1", "kustomizations"
    body = {
        "apiVersion": f"{group}/{version}",
        "kind": "Kustomization",
        "metadata": {"name": "web", "labels": {"openova.io/managed-by": "flux"}},
        "spec": {
            "interval": "5m",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "web"},
        },
    }
    created = api.create_namespaced_custom_object(group, version, "flux-system", plural, body)
    assert created["metadata"]["generation"] == 1
    stale = dict(created)
    patched = api.patch_namespaced_custom_object(
        group, version, "flux-system", plural, "web", {"spec": {"interval": "1m"}}
    )
    assert patched["metadata"]["generation"] == 2
    with pytest.raises(client.ApiException) as conflict:
        api.replace_namespaced_custom_object(group, version, "flux-system", plural, "web", stale)
    assert conflict.value.status == 409
    status = api.patch_namespaced_custom_object_status(
        group, version, "flux-system", plural, "web", {"status": {"observedGeneration": 2}}
    )
    assert status["metadata"]["generation"] == 2 and status["status"]["observedGeneration"] == 2
    with pytest.raises(client.ApiException) as invalid:
        api.create_namespaced_custom_object(
            group,
            version,
            "flux-system",
            plural,
            {**body, "metadata": {"name": "bad"}, "spec": {"interval": "1m"}},
        )
    assert invalid.value.status == 422 and "prune" in invalid.value.body
    api.delete_namespaced_custom_object(group, version, "flux-system", plural, "web")
    listed = api.list_cluster_custom_object(
        group, version, plural, label_selector="openova.io/managed-by=flux"
    )
    assert listed["items"] == [] and int(listed["metadata"]["resourceVersion"]) > 100


def test_stream_cut_mid_event_resumes_and_loses_nothing(kube, fluxd, start_watcher, changes):
    fluxd.create("HelmRelease", "web", labels=ORG)
    start_watcher()
    changes.wait(lambda: obj("HelmRelease", "web"))
    opened = kube.watch_count
    kube.cut_next_event()
    fluxd.progressing("HelmRelease", "web", "6.5.4")
    fluxd.install_failed("web", "6.5.4", "context deadline exceeded")
    hr = changes.wait(
        lambda: (o := obj("HelmRelease", "web")) and o.ready_reason == "InstallFailed" and o
    )
    assert kube.watch_count > opened  # the watcher reconnected
    assert hr.ready_message == (
        "Helm install failed for release flux-system/web with chart podinfo@6.5.4: "
        "context deadline exceeded"
    )
    ready = list(FluxEvent.objects.filter(obj=hr, type="Ready").values_list("reason", flat=True))
    assert ready == ["Progressing", "InstallFailed"]  # each change once, none lost


def test_apiserver_down_then_back_marks_the_cluster_lost_then_recovers(
    kube, fluxd, start_watcher, changes
):
    fluxd.create("Kustomization", "acme", labels=ORG)
    start_watcher()
    changes.wait(lambda: obj("Kustomization", "acme"))
    kube.down()
    fluxd.ready("Kustomization", "acme", REV1)  # happens while the watcher cannot see it
    lost = changes.wait(
        lambda: (c := FluxCluster.objects.get(name="hz-fsn-rtz-prod")) and not c.connected and c
    )
    assert lost.lost_since is not None and lost.last_error
    assert obj("Kustomization", "acme").ready_status == ""
    kube.up()
    ks = changes.wait(
        lambda: (o := obj("Kustomization", "acme")) and o.ready_status == "True" and o
    )
    assert ks.applied_revision == REV1
    back = changes.wait(
        lambda: (c := FluxCluster.objects.get(name="hz-fsn-rtz-prod")).connected and c
    )
    assert back.is_healthy and back.lost_since is None


def test_410_expired_relists_and_reconciles(kube, fluxd, start_watcher, changes):
    fluxd.create("Kustomization", "acme", labels=ORG)
    fluxd.create("Kustomization", "gone", labels=ORG)
    watcher = start_watcher()
    changes.wait(lambda: obj("Kustomization", "gone"))
    ks_watch = next(w for w in watcher.watchers if w.kind.kind == "Kustomization")
    relists = ks_watch.relists
    kube.down()
    fluxd.ready("Kustomization", "acme", REV2)
    fluxd.delete("Kustomization", "gone")
    kube.store.expire()  # the history the watcher would resume from is compacted away
    kube.up()
    changes.wait(lambda: (o := obj("Kustomization", "gone")) and o.is_deleted)
    assert ks_watch.relists == relists + 1
    assert obj("Kustomization", "acme").applied_revision == REV2
    assert FluxEvent.objects.filter(obj=obj("Kustomization", "gone"), event="deleted").count() == 1


def test_object_deleted_while_the_watcher_is_stopped_is_tombstoned_on_restart(
    kube, fluxd, start_watcher, changes
):
    fluxd.create("GitRepository", "acme", labels=ORG)
    fluxd.create("GitRepository", "old", labels=ORG)
    first = start_watcher()
    changes.wait(lambda: obj("GitRepository", "old"))
    first.stop.set()
    fluxd.delete("GitRepository", "old")
    kube.store.expire()
    start_watcher()
    gone = changes.wait(lambda: (o := obj("GitRepository", "old")) and o.is_deleted and o)
    assert gone.deleted_at is not None
    assert not obj("GitRepository", "acme").is_deleted


def test_a_restarted_watcher_resumes_from_its_resource_version_and_replays_deletions(
    kube, fluxd, start_watcher, changes
):
    fluxd.create("GitRepository", "old", labels=ORG)
    first = start_watcher()
    changes.wait(lambda: obj("GitRepository", "old"))
    first.stop.set()
    fluxd.delete("GitRepository", "old")  # still inside the watch history
    second = start_watcher()
    changes.wait(lambda: (o := obj("GitRepository", "old")) and o.is_deleted)
    git_watch = next(w for w in second.watchers if w.kind.kind == "GitRepository")
    assert git_watch.relists == 0  # resumed by watch, no list needed


def test_two_watchers_on_one_cluster_store_each_change_once(kube, fluxd, start_watcher, changes):
    fluxd.create("HelmRelease", "web", labels=ORG)
    start_watcher(kinds=flux.KINDS)
    start_watcher(kinds=flux.KINDS)
    for _ in range(2 * len(flux.KINDS)):  # both watchers are watching before anything changes
        assert kube.watches_opened.acquire(timeout=10)
    changes.wait(lambda: obj("HelmRelease", "web"))
    fluxd.progressing("HelmRelease", "web", "6.5.4")
    fluxd.ready("HelmRelease", "web", "6.5.4")
    hr = changes.wait(lambda: (o := obj("HelmRelease", "web")) and o.ready_status == "True" and o)
    assert FluxObject.objects.filter(name="web").count() == 1
    ready = list(FluxEvent.objects.filter(obj=hr, type="Ready").values_list("reason", flat=True))
    assert ready == ["Progressing", "InstallSucceeded"]
    assert FluxEvent.objects.filter(obj=hr).count() == 4  # Ready x2, Released, Reconciling


def test_replayed_older_event_is_ignored(db):
    from gitops import store

    raw = {
        "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "200", "generation": 1},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "R", "message": "m"}]
        },
    }
    assert store.apply("c", "Kustomization", "MODIFIED", raw) is not None
    older = {**raw, "metadata": {**raw["metadata"], "resourceVersion": "150"}, "status": {}}
    assert store.apply("c", "Kustomization", "MODIFIED", older) is None
    assert store.apply("c", "Kustomization", "DELETED", older) is None
    kept = FluxObject.objects.get(name="a")
    assert kept.ready_status == "True" and kept.deleted_at is None


def test_recorded_events_are_stored_once_updated_by_newer_and_pruned(db, settings):
    from gitops import store
    from gitops.models import ObjectEvent

    settings.FLUX_EVENTS_PER_OBJECT = 3

    def event(uid: str, rv: int, count: int = 1, reason: str = "Progressing") -> dict:
        return {
            "metadata": {
                "uid": uid,
                "name": f"web.{uid}",
                "namespace": "ns",
                "resourceVersion": str(rv),
            },
            "involvedObject": {"kind": "HelmRelease", "name": "web", "namespace": "ns"},
            "type": "Normal",
            "reason": reason,
            "message": f"{reason} {uid}",
            "count": count,
            "lastTimestamp": f"2026-01-01T00:00:{rv % 60:02d}Z",
            "source": {"component": "helm-controller"},
        }

    store.record_events("c", [event("a", 10), event("b", 11)])
    store.record_events("c", [event("a", 9, count=7)])  # an older copy changes nothing
    store.record_events("c", [event("a", 12, count=2)])
    assert ObjectEvent.objects.get(uid="a").count == 2
    store.record_events("c", [event(u, 20 + i) for i, u in enumerate("cde")])
    kept = list(ObjectEvent.objects.order_by("-last_seen").values_list("uid", flat=True))
    assert kept == ["e", "d", "c"]  # the newest FLUX_EVENTS_PER_OBJECT per object
    assert store.last_event_resource_version("c", "HelmRelease") == 22


def test_relist_reads_in_pages_of_limit_with_continue(
    kube, fluxd, start_watcher, changes, settings
):
    settings.FLUX_LIST_PAGE_SIZE = 3
    for i in range(7):
        fluxd.create("Kustomization", f"ks-{i}", labels=ORG)
    start_watcher()
    changes.wait(lambda: all(obj("Kustomization", f"ks-{i}") for i in range(7)))
    lists = [
        path
        for method, path in kube.requests
        if method == "GET" and "/kustomizations" in path and "watch=" not in path
    ]
    assert len(lists) == 3, lists  # 3 + 3 + 1, never the whole list in one answer
    assert all("limit=3" in path for path in lists)
    assert sum("continue=" in path for path in lists) == 2


@pytest.mark.postgres
def test_idle_watch_streams_hold_no_pooled_connection(kube, fluxd, start_watcher, changes):
    """Six kinds watched on one cluster through a pool of two: each watch stream borrows a
    connection only to store what it read, never while it waits on the apiserver."""
    with small_pool(max_size=2) as pool:
        fluxd.create("Kustomization", "acme", labels=ORG)
        start_watcher()
        changes.wait(lambda: obj("Kustomization", "acme"))
        fluxd.progressing("Kustomization", "acme", REV1)
        fluxd.ready("Kustomization", "acme", REV1)
        ks = changes.wait(
            lambda: (o := obj("Kustomization", "acme")) and o.ready_status == "True" and o
        )
        assert ks.applied_revision == REV1
        cluster = FluxCluster.objects.get(name="hz-fsn-rtz-prod")
        assert cluster.connected and cluster.last_error == "", cluster.last_error
        connection.close()
        assert wait_for(lambda: checked_out() == 0), f"watch streams keep {pool.get_stats()}"
