"""The app repo's layout makes promotion meaningful (issue 16, item 4): a base shared by every
Environment — the configuration `values.yaml`, a root `kustomization.yaml`, `secrets/`
(ExternalSecret references only) — beside per-Environment `overlays/<env>/<host-cluster>/`
(placement, size, replicas) and `CODEOWNERS`. Flux builds the root with the overlay of its own
Environment and region as a kustomize Component, so merging `develop` into `main` carries the base
while each Environment keeps its placement. Repositories in the old layout
(`clusters/<host-cluster>/applications/<app>/`) are rewritten by the level-triggered sync, once.

Everything goes through HTTP (the portal's API and webhook endpoint) and the Gitea emulator, whose
exchanges are checked against Gitea's OpenAPI document."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.apps import apps as django_apps
from django.test import Client

from core import outbox
from gitops import naming
from gitops.backend import blob_sha
from marketplace.models import Application, GitSync, Promotion

pytestmark = pytest.mark.django_db
APPS = "/api/v1/orgs/acme/environments/{env}/applications/"
CONFIG = ("system", "catalyst-config")
PROD, DEV = "hz-fsn-rtz-prod", "hz-fsn-rtz-dev"
PROD_OVERLAY = f"overlays/acme-prod/{PROD}/"
DEV_OVERLAY = f"overlays/acme-dev/{DEV}/"
LEGACY = f"clusters/{PROD}/applications/cache/"
TEAMMATE = {"login": "tina", "full_name": "Tina Teammate", "email": "tina@example.test"}


def _install(client: Client, on_commit: Any, env: str, **extra: Any) -> Application:
    with on_commit():
        response = client.post(
            APPS.format(env=env),
            {"name": "cache", "blueprint": "bp-valkey", **extra},
            content_type="application/json",
        )
    assert response.status_code == 201, response.json()
    return Application.objects.get(name="cache", environment__name=env)


def _yaml(gitea: Any, path: str, branch: str = "main", repo: tuple[str, str] = ("acme", "cache")):
    raw = gitea.read(*repo, path, branch)
    assert raw is not None, f"{path} is not on {branch}"
    return yaml.safe_load(raw)


def _flux_kustomization(gitea: Any, env: str, cluster: str) -> dict[str, Any]:
    path = f"applications/acme/{env}/cache/kustomization-{cluster}.yaml"
    return _yaml(gitea, path, repo=CONFIG)


def test_an_application_repo_holds_a_base_and_one_overlay_per_environment(
    catalog, cast, client_for, on_commit, portal
):
    admin = client_for(cast["admin"])
    _install(admin, on_commit, "acme-prod", values={"architecture": "replication"})
    files = portal.tree("acme", "cache", "main")
    assert not [p for p in files if p.startswith("clusters/")]
    assert {
        "values.yaml",
        "kustomization.yaml",
        "secrets/externalsecret.yaml",
        f"{PROD_OVERLAY}kustomization.yaml",
        f"{PROD_OVERLAY}helmrelease.yaml",
        f"{PROD_OVERLAY}values.yaml",
    } <= set(files)

    # the base: the configuration, and a root kustomization binding the secret references
    assert _yaml(portal, "values.yaml")["architecture"] == "replication"
    root = _yaml(portal, "kustomization.yaml")
    assert root["kind"] == "Kustomization" and root["resources"] == ["secrets/externalsecret.yaml"]
    secrets = list(yaml.safe_load_all(portal.read("acme", "cache", "secrets/externalsecret.yaml")))
    assert [d["kind"] for d in secrets] == ["Password", "ExternalSecret"]
    assert "acme-prod" not in portal.read("acme", "cache", "secrets/externalsecret.yaml").decode()

    # the overlay: a kustomize Component with this Environment's namespace, labels and chart values
    component = _yaml(portal, f"{PROD_OVERLAY}kustomization.yaml")
    assert component["kind"] == "Component" and component["namespace"] == "acme-prod"
    assert component["labels"][0]["pairs"]["openova.io/host-cluster"] == PROD
    assert component["resources"] == ["helmrelease.yaml"]
    assert _yaml(portal, f"{PROD_OVERLAY}values.yaml")["architecture"] == "replication"

    # Flux builds the root with that Environment's overlay of its region
    spec = _flux_kustomization(portal, "acme-prod", PROD)["spec"]
    assert spec["path"] == "./" and spec["components"] == [f"./{PROD_OVERLAY.rstrip('/')}"]
    assert spec["sourceRef"]["kind"] == "GitRepository" and spec["targetNamespace"] == "acme-prod"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
def test_the_layout_builds_with_kustomize_as_flux_does(
    catalog, cast, client_for, on_commit, portal, tmp_path
):
    """What kustomize-controller does: the root kustomization plus the Flux Kustomization's
    components, built by real kustomize (an overlay below its base would be refused as a cycle)."""
    _install(client_for(cast["admin"]), on_commit, "acme-prod")
    checkout = tmp_path / "checkout"
    for path in portal.tree("acme", "cache", "main"):
        target = checkout / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(portal.read("acme", "cache", path))
    spec = _flux_kustomization(portal, "acme-prod", PROD)["spec"]
    root = checkout / spec["path"] / "kustomization.yaml"
    doc = yaml.safe_load(root.read_text())
    doc["components"] = spec["components"]
    root.write_text(yaml.safe_dump(doc))
    built = subprocess.run(
        ["kubectl", "kustomize", str(Path(checkout))], capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    objects = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(built.stdout)}
    assert {
        ("HelmRelease", "cache"),
        ("HelmRepository", "cache-charts"),
        ("ConfigMap", "cache-values"),
        ("ExternalSecret", "cache-credentials"),
    } <= objects
    for doc in yaml.safe_load_all(built.stdout):
        assert doc["metadata"]["namespace"] == "acme-prod"
        assert doc["metadata"]["labels"]["openova.io/host-cluster"] == PROD


def _to_old_layout(portal: Any, app: Application) -> str:
    """Put the repo (and the Flux Kustomization) back in the layout the portal wrote before:
    per region `clusters/<host-cluster>/applications/<app>/`, what the portal last knew of it."""
    read = lambda path: portal.read("acme", "cache", path)  # noqa: E731
    old_kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "metadata": {"name": "cache"},
        "namespace": "acme-prod",
        "resources": ["helmrelease.yaml", "externalsecret.yaml"],
        "configMapGenerator": [{"name": "cache-values", "files": ["values.yaml"]}],
    }
    changes: dict[str, bytes | None] = {
        f"{LEGACY}kustomization.yaml": yaml.safe_dump(old_kustomization).encode(),
        f"{LEGACY}helmrelease.yaml": read(f"{PROD_OVERLAY}helmrelease.yaml"),
        f"{LEGACY}values.yaml": read(f"{PROD_OVERLAY}values.yaml"),
        f"{LEGACY}externalsecret.yaml": read("secrets/externalsecret.yaml"),
        "kustomization.yaml": None,
        "secrets/externalsecret.yaml": None,
        f"{PROD_OVERLAY}kustomization.yaml": None,
        f"{PROD_OVERLAY}helmrelease.yaml": None,
        f"{PROD_OVERLAY}values.yaml": None,
    }
    head = portal.commit_directly("acme", "cache", "main", changes, "old layout")
    old = {p: blob_sha(c) for p, c in changes.items() if c is not None}
    old["values.yaml"] = blob_sha(read("values.yaml"))
    GitSync.objects.filter(application=app).update(head=head, blobs=old)
    flux_path = f"applications/acme/acme-prod/cache/kustomization-{PROD}.yaml"
    doc = yaml.safe_load(portal.read(*CONFIG, flux_path))
    doc["spec"]["path"] = f"./{LEGACY.rstrip('/')}"
    del doc["spec"]["components"]
    portal.commit_directly(*CONFIG, "main", {flux_path: yaml.safe_dump(doc).encode()}, "old path")
    return head


def _run_layout_migration(on_commit: Any) -> None:
    """The data migration that ships the layout: every Application re-rendered by the sync
    (its outbox rows handed to the workers by the sweeper)."""
    migration = importlib.import_module("marketplace.migrations.0007_repo_layout")
    migration.rerender(django_apps, None)
    with on_commit():
        assert outbox.sweep() >= 1


def test_a_repo_in_the_old_layout_is_rewritten_by_the_sync_once(
    catalog, cast, client_for, on_commit, portal
):
    admin = client_for(cast["admin"])
    app = _install(admin, on_commit, "acme-prod", values={"architecture": "replication"})
    portal.flush()
    # a person's own file beside the rendered ones in the old layout is theirs to keep
    mine = f"{LEGACY}extra-configmap.yaml"
    portal.commit_directly("acme", "cache", "main", {mine: b"kind: ConfigMap\n"}, as_user=TEAMMATE)
    portal.flush()
    _to_old_layout(portal, app)
    assert f"{LEGACY}helmrelease.yaml" in portal.tree("acme", "cache", "main")
    before = portal.log("acme", "cache")

    _run_layout_migration(on_commit)
    after = portal.log("acme", "cache")
    assert len(after) == len(before) + 1  # one commit rewrote it
    files = portal.tree("acme", "cache", "main")
    assert [p for p in files if p.startswith("clusters/")] == [mine]
    assert f"{PROD_OVERLAY}helmrelease.yaml" in files and "kustomization.yaml" in files
    assert _yaml(portal, f"{PROD_OVERLAY}values.yaml")["architecture"] == "replication"
    spec = _flux_kustomization(portal, "acme-prod", PROD)["spec"]
    assert spec["path"] == "./" and spec["components"] == [f"./{PROD_OVERLAY.rstrip('/')}"]
    state = GitSync.objects.get(application=app)
    assert state.state == "in-sync" and f"{LEGACY}helmrelease.yaml" not in state.blobs
    app.refresh_from_db()
    assert app.state == "committed" and app.values["architecture"] == "replication"

    # once: the sync after it finds nothing to do, in the app repo and in catalyst-config
    config_log = portal.log(*CONFIG)
    _run_layout_migration(on_commit)
    assert portal.log("acme", "cache") == after and portal.log(*CONFIG) == config_log
    # the portal's own migration commit comes back through the hook and changes nothing
    portal.flush()
    assert GitSync.objects.get(application=app).state == "in-sync"


def test_a_push_in_the_new_layout_is_adopted_and_the_overlay_follows(
    catalog, cast, client_for, on_commit, portal
):
    admin = client_for(cast["admin"])
    app = _install(admin, on_commit, "acme-prod")
    portal.flush()
    text = "architecture: replication\npersistence:\n  size: 8Gi\n"
    notes = "overlays/acme-prod/NOTES.md"
    pushed = portal.commit_directly(
        "acme",
        "cache",
        "main",
        {"values.yaml": text.encode(), notes: b"mine\n"},
        "bigger",
        as_user=TEAMMATE,
    )
    portal.flush()
    app.refresh_from_db()
    assert app.values["persistence"]["size"] == "8Gi"
    assert GitSync.objects.get(application=app).commit == pushed
    assert portal.log("acme", "cache")[0] == "applications.git_change: application acme-prod/cache"
    rendered = _yaml(portal, f"{PROD_OVERLAY}values.yaml")
    assert rendered["primary"]["persistence"]["size"] == "8Gi"
    assert portal.read("acme", "cache", "values.yaml").decode() == text
    assert portal.read("acme", "cache", notes) == b"mine\n"

    # a hand edit of an overlay's rendered file is flagged, never overwritten
    release = portal.read("acme", "cache", f"{PROD_OVERLAY}helmrelease.yaml") + b"# mine\n"
    portal.commit_directly(
        "acme", "cache", "main", {f"{PROD_OVERLAY}helmrelease.yaml": release}, as_user=TEAMMATE
    )
    portal.flush()
    state = GitSync.objects.get(application=app)
    assert state.state == "invalid"
    assert [e["path"] for e in state.errors] == [f"{PROD_OVERLAY}helmrelease.yaml"]


def test_merging_develop_into_main_carries_the_base_and_keeps_prods_placement(
    catalog, cast, client_for, on_commit, portal
):
    """prod first (main), then dev (develop branches from main): dev's configuration changes;
    a pull request develop → main opened in Gitea is a promotion; merged, prod adopts the base
    while its overlay — its region, its size — is its own, and dev's overlay stays inert."""
    admin = client_for(cast["admin"])
    prod = _install(admin, on_commit, "acme-prod", size="large")
    _install(admin, on_commit, "acme-dev")
    portal.flush()
    assert _yaml(portal, "values.yaml", "develop") == _yaml(portal, "values.yaml", "main")
    with on_commit():
        changed = admin.patch(
            APPS.format(env="acme-dev") + "cache/",
            {"values": {"architecture": "replication"}},
            content_type="application/json",
        )
    assert changed.status_code == 200, changed.json()
    portal.flush()
    prod_overlay = {p: portal.read("acme", "cache", p) for p in portal.tree("acme", "cache")}
    prod_overlay = {p: c for p, c in prod_overlay.items() if p.startswith(PROD_OVERLAY)}

    pull = portal.open_pull_as(
        "acme", "cache", TEAMMATE, head="develop", base="main", title="Promote dev"
    )
    portal.flush()
    found = Promotion.objects.get(pr_number=pull["number"])
    assert found.target == prod and found.source.environment.name == "acme-dev"
    with on_commit():
        merged = admin.post(f"/api/v1/promotions/{found.pk}/merge")
    assert merged.status_code == 200, merged.json()
    portal.flush()

    prod.refresh_from_db()
    assert prod.values["architecture"] == "replication"
    assert GitSync.objects.get(application=prod).state == "in-sync"
    # the base came over; prod's overlay is prod's: its region, its size, the new configuration
    assert _yaml(portal, "values.yaml")["architecture"] == "replication"
    rendered = _yaml(portal, f"{PROD_OVERLAY}values.yaml")
    assert rendered["architecture"] == "replication"
    assert rendered == yaml.safe_load(
        portal.read("acme", "cache", f"{PROD_OVERLAY}values.yaml", "main")
    )
    before_values = yaml.safe_load(prod_overlay[f"{PROD_OVERLAY}values.yaml"])
    assert rendered["primary"]["resources"] == before_values["primary"]["resources"]  # large
    assert (
        portal.read("acme", "cache", f"{PROD_OVERLAY}helmrelease.yaml")
        == (prod_overlay[f"{PROD_OVERLAY}helmrelease.yaml"])
    )
    # dev's overlay came along but nothing of prod builds it
    assert f"{DEV_OVERLAY}values.yaml" in portal.tree("acme", "cache", "main")
    spec = _flux_kustomization(portal, "acme-prod", PROD)["spec"]
    assert spec["components"] == [f"./{PROD_OVERLAY.rstrip('/')}"]
    assert naming.overlay_dir("acme-dev", DEV) == DEV_OVERLAY
