"""A simulated cluster for demos (`SIMULATED_CLUSTER=true`): no Kubernetes, no Flux, but the whole
loop the portal depends on, so a newcomer running `make run` sees an Application go from
*Committed* to *Ready*.

Three parts, all in the serving process:

1. the Kubernetes API emulator (gitops/kubesim.py) on a loopback port;
2. `SimulatedFlux`, a stand-in for source-, kustomize- and helm-controller that reads the
   portal's Git repositories (through the configured Git backend) and moves the Flux objects in
   the emulator, one step every `SIMULATED_CLUSTER_STEP_SECONDS`:
   - a GitRepository stores the head of its branch as its artifact (`<branch>@sha1:<sha>`);
   - a Kustomization waits for its source and its `dependsOn`, goes *Progressing*, then applies
     the Flux objects found under its `path` (the `resources` of its `kustomization.yaml` and of
     each Component in `spec.components`, else every YAML file), records them in `status.inventory`, prunes what left Git (with what the pruned
     Kustomizations applied) and reports Ready for the source revision;
   - a HelmRelease whose spec or values (the files its Kustomization generates ConfigMaps from)
     changed goes *Progressing*, then *InstallSucceeded* or *UpgradeSucceeded*;
   each step writes the conditions and core/v1 Events the real controllers write. The bootstrap
   object is the catalyst-config GitRepository and its Kustomization
   (`FLUX_CONFIG_KUSTOMIZATION`), which applies every Application's GitRepository and
   Kustomizations rendered there, and whose revision makes Organizations *Ready*;
3. the ordinary Flux watcher (`gitops.flux.ClusterWatcher`) on the emulator, under the cluster
   name `simulated`: pages, SSE and audit see exactly what they would see from a real cluster.

Nothing runs anywhere: no chart is pulled, no pod starts. Every page says so (templates/base.html).
The emulator starts empty on each start: the first pass re-creates what Git holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import yaml
from django.conf import settings
from django.db import close_old_connections

from . import naming
from .backend import GitBackend
from .kubesim import ApiError, Flux, KubeEmulator, Resource, condition

log = logging.getLogger(__name__)

CLUSTER_NAME = "simulated"
SOURCE = "GitRepository"
KUSTOMIZATION = "Kustomization"
HELM_RELEASE = "HelmRelease"
TICK_SECONDS = 0.5
KUSTOMIZE_FILE = "kustomization.yaml"
KUSTOMIZE_API = "kustomize.config.k8s.io/"

Key = tuple[str, str, str]  # kind, namespace, name


def _ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), None)


def _reconciling(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Reconciling" and c.get("status") == "True" for c in conditions)


def _current(obj: dict[str, Any]) -> bool:
    """Ready=True for the object's present spec (its generation)."""
    ready = _ready(obj)
    return bool(
        ready
        and ready.get("status") == "True"
        and ready.get("observedGeneration") == obj["metadata"].get("generation")
    )


def repo_of(url: str) -> tuple[str, str]:
    """(owner, repo) of a Git URL `…/<owner>/<repo>.git`."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if len(parts) < 2:
        raise ValueError(f"not a repository URL: {url!r}")
    return parts[-2], parts[-1].removesuffix(".git")


def config_source_url() -> str:
    owner, repo, _ = naming.config_repo()
    base = (settings.GITEA_URL or "https://git.simulated.invalid").rstrip("/")
    return f"{base}/{owner}/{repo}.git"


@dataclass(frozen=True)
class Manifest:
    key: Key
    body: dict[str, Any]
    resource: Resource
    values_digest: str = ""  # of the generated values a HelmRelease reads (valuesFrom)

    @property
    def inventory_id(self) -> str:
        kind, namespace, name = self.key
        return f"{namespace}_{name}_{self.resource.group}_{kind}"


class SimulatedFlux:
    """Source-, kustomize- and helm-controller, one step per object per `step_seconds`."""

    def __init__(self, kube: KubeEmulator, git: GitBackend, *, step_seconds: float) -> None:
        self.kube = kube
        self.store = kube.store
        self.flux = Flux(kube)
        self.git = git
        self.step_seconds = step_seconds
        self._last_step: dict[Key, float] = {}
        self._parsed: dict[str, list[dict[str, Any]]] = {}  # blob sha → YAML documents
        self._values: dict[Key, str] = {}  # HelmRelease → digest of the values applied for it

    # -- pacing -----------------------------------------------------------------------------
    def _due(self, key: Key) -> bool:
        last = self._last_step.get(key)
        return last is None or time.monotonic() - last >= self.step_seconds

    def _stepped(self, key: Key) -> None:
        self._last_step[key] = time.monotonic()

    # -- objects ----------------------------------------------------------------------------
    def _resource(self, kind: str) -> Resource:
        return self.store.by_kind[kind]

    def _objects(self, kind: str) -> list[dict[str, Any]]:
        return self.store.list_objects(self._resource(kind), None, "")["items"]

    def _get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.store.get(self._resource(kind), namespace, name)
        except ApiError:
            return None

    def bootstrap(self) -> None:
        """The catalyst-config GitRepository and the Kustomization that applies it."""
        namespace, _, name = settings.FLUX_CONFIG_KUSTOMIZATION.partition("/")
        _, _, branch = naming.config_repo()
        for kind, spec in (
            (SOURCE, {"interval": "1m", "url": config_source_url(), "ref": {"branch": branch}}),
            (
                KUSTOMIZATION,
                {
                    "interval": "10m",
                    "path": "./",
                    "prune": True,
                    "sourceRef": {"kind": SOURCE, "name": name},
                },
            ),
        ):
            if self._get(kind, namespace, name) is None:
                self.flux.create(kind, name, namespace=namespace, spec=spec)

    def tick(self) -> None:
        """One pass of every controller over every object."""
        for obj in self._objects(SOURCE):
            self._reconcile_source(obj)
        for obj in self._objects(KUSTOMIZATION):
            self._reconcile_kustomization(obj)
        for obj in self._objects(HELM_RELEASE):
            self._reconcile_release(obj)

    # -- source-controller ------------------------------------------------------------------
    def _reconcile_source(self, obj: dict[str, Any]) -> None:
        meta, spec = obj["metadata"], obj["spec"]
        key: Key = (SOURCE, meta["namespace"], meta["name"])
        branch = (spec.get("ref") or {}).get("branch") or "main"
        try:
            owner, repo = repo_of(spec["url"])
            head = self.git.head(owner, repo, branch)
        except Exception:  # a repository not created yet: try again on the next pass
            log.debug("simulated source %s: no head yet", meta["name"], exc_info=True)
            return
        if head is None:
            return
        revision = f"{branch}@sha1:{head}"
        artifact = ((obj.get("status") or {}).get("artifact") or {}).get("revision")
        if (artifact == revision and _current(obj)) or not self._due(key):
            return
        self.flux.ready(SOURCE, meta["name"], revision, namespace=meta["namespace"])
        self.flux.event(
            SOURCE,
            meta["name"],
            "NewArtifact",
            f"stored artifact for commit '{head[:7]}'",
            namespace=meta["namespace"],
            revision=revision,
        )
        self._stepped(key)

    # -- kustomize-controller ---------------------------------------------------------------
    def _reconcile_kustomization(self, obj: dict[str, Any]) -> None:
        meta, spec = obj["metadata"], obj["spec"]
        namespace, name = meta["namespace"], meta["name"]
        key: Key = (KUSTOMIZATION, namespace, name)
        if not self._due(key):
            return
        ref = spec["sourceRef"]
        source = self._get(ref.get("kind", SOURCE), ref.get("namespace") or namespace, ref["name"])
        artifact = ((source or {}).get("status") or {}).get("artifact") or {}
        revision = artifact.get("revision")
        if source is None or not revision:
            return
        status = obj.get("status") or {}
        if status.get("lastAppliedRevision") == revision and _current(obj):
            return
        waiting = self._unready_dependency(obj)
        if waiting:
            ready = _ready(obj) or {}
            if ready.get("reason") != "DependencyNotReady":
                self.flux.dependency_not_ready(KUSTOMIZATION, name, waiting, namespace=namespace)
                self._stepped(key)
            return
        if not _reconciling(obj):
            self.flux.progressing(KUSTOMIZATION, name, revision, namespace=namespace)
            self.flux.event(
                KUSTOMIZATION,
                name,
                "Progressing",
                f"Reconciliation of revision {revision} started",
                namespace=namespace,
                revision=revision,
            )
            self._stepped(key)
            return
        self._apply(obj, source, revision)
        self._stepped(key)

    def _unready_dependency(self, obj: dict[str, Any]) -> str:
        for dep in obj["spec"].get("dependsOn") or []:
            namespace = dep.get("namespace") or obj["metadata"]["namespace"]
            found = self._get(KUSTOMIZATION, namespace, dep["name"])
            if found is None or not _current(found):
                return f"{namespace}/{dep['name']}"
        return ""

    def _apply(self, obj: dict[str, Any], source: dict[str, Any], revision: str) -> None:
        meta, spec = obj["metadata"], obj["spec"]
        namespace, name = meta["namespace"], meta["name"]
        owner, repo = repo_of(source["spec"]["url"])
        branch = (source["spec"].get("ref") or {}).get("branch") or "main"
        try:
            manifests = self._build(owner, repo, branch, spec, revision)
        except _NotYet:
            return
        except (ValueError, yaml.YAMLError) as exc:
            self._failed(name, namespace, revision, "BuildFailed", str(exc))
            return
        try:
            for manifest in manifests:
                self._upsert(manifest)
        except ApiError as exc:
            self._failed(name, namespace, revision, "ReconciliationFailed", exc.message)
            return
        entries = [{"id": m.inventory_id, "v": m.resource.version} for m in manifests]
        previous = ((obj.get("status") or {}).get("inventory") or {}).get("entries") or []
        if spec.get("prune"):
            kept = {e["id"] for e in entries}
            for entry in previous:
                if entry["id"] not in kept:
                    self._prune(entry["id"])
        self.flux.set_status(
            KUSTOMIZATION,
            name,
            namespace,
            conditions=[
                condition(
                    "Ready", "True", "ReconciliationSucceeded", f"Applied revision: {revision}", 0
                )
            ],
            lastAppliedRevision=revision,
            lastAttemptedRevision=revision,
            inventory={"entries": entries},
        )
        self.flux.event(
            KUSTOMIZATION,
            name,
            "ReconciliationSucceeded",
            f"Reconciliation finished, next run in {spec.get('interval', '10m')}",
            namespace=namespace,
            revision=revision,
        )

    def _failed(self, name: str, namespace: str, revision: str, reason: str, message: str) -> None:
        self.flux.set_status(
            KUSTOMIZATION,
            name,
            namespace,
            conditions=[condition("Ready", "False", reason, message, 0)],
            lastAttemptedRevision=revision,
        )
        self.flux.event(KUSTOMIZATION, name, reason, message, type_="Warning", namespace=namespace)

    def _build(
        self, owner: str, repo: str, branch: str, spec: dict[str, Any], revision: str
    ) -> list[Manifest]:
        """The Flux objects under the Kustomization's path at `revision` (the branch head)."""
        root = spec.get("path", "./").removeprefix("./").strip("/")
        root = f"{root}/" if root else ""
        tree = self.git.read_tree(owner, repo, branch, root)
        if tree.head is None or revision.rsplit(":", 1)[-1] != tree.head:
            raise _NotYet  # the branch moved on: the source catches up on its next pass
        # the root's kustomization.yaml, then each Component the Kustomization adds
        # (`spec.components`, relative to its path), as kustomize composes them
        layers: list[tuple[str, dict[str, Any]]] = []
        for folder in [root] + [
            f"{root}{c.removeprefix('./').strip('/')}/"
            for c in spec.get("components") or []
            if isinstance(c, str)
        ]:
            if f"{folder}{KUSTOMIZE_FILE}" in tree.blobs:
                docs = self._docs(owner, repo, branch, f"{folder}{KUSTOMIZE_FILE}", tree.blobs)
                layer = next((d for d in docs if _is_kustomize(d)), {})
                if layer:
                    layers.append((folder, layer))
        if layers:
            paths = [
                f"{folder}{r}"
                for folder, layer in layers
                for r in layer.get("resources") or []
                if isinstance(r, str)
            ]
        else:
            paths = sorted(p for p in tree.blobs if p.endswith((".yaml", ".yml")))
        found = []
        for path in paths:
            if path in tree.blobs:
                found.extend(self._docs(owner, repo, branch, path, tree.blobs))
        namespace = spec.get("targetNamespace") or next(
            (layer["namespace"] for _, layer in reversed(layers) if layer.get("namespace")), ""
        )
        labels: dict[str, str] = {}
        for _, layer in layers:
            for entry in layer.get("labels") or []:
                labels.update((entry or {}).get("pairs") or {})
        # the values files a configMapGenerator turns into the ConfigMaps releases read: a change
        # there upgrades the release, as helm-controller sees a new config digest
        generated = sorted(
            tree.blobs.get(f"{folder}{f}", "")
            for folder, layer in layers
            for generator in layer.get("configMapGenerator") or []
            for f in generator.get("files") or []
        )
        digest = "sha256:" + hashlib.sha256("".join(generated).encode()).hexdigest()
        manifests = [m for doc in found if (m := self._manifest(doc, namespace, labels))]
        return [
            replace(m, values_digest=digest) if m.key[0] == HELM_RELEASE and generated else m
            for m in manifests
        ]

    def _docs(
        self, owner: str, repo: str, branch: str, path: str, blobs: dict[str, str]
    ) -> list[dict[str, Any]]:
        sha = blobs[path]
        if sha not in self._parsed:
            raw = self.git.read_file(owner, repo, branch, path) or b""
            docs = [d for d in yaml.safe_load_all(raw) if isinstance(d, dict)]
            self._parsed[sha] = docs
        return self._parsed[sha]

    def _manifest(
        self, doc: dict[str, Any], namespace: str, labels: dict[str, str]
    ) -> Manifest | None:
        """A Flux object the emulator serves, in the Kustomization's target namespace (else its
        own, else `default`) with the overlay's labels; anything else (Organization CRs,
        Secrets, kustomize files) has nothing to simulate and is left out."""
        resource = self.store.by_kind.get(str(doc.get("kind")))
        if resource is None or resource.kind == "Event":
            return None
        if doc.get("apiVersion") != resource.api_version:
            return None
        meta = {**(doc.get("metadata") or {})}
        meta["namespace"] = namespace or meta.get("namespace") or "default"
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
        key = (resource.kind, meta["namespace"], meta.get("name") or "")
        return Manifest(key, {**doc, "metadata": meta}, resource)

    def _upsert(self, manifest: Manifest) -> None:
        kind, namespace, name = manifest.key
        if self._get(kind, namespace, name) is None:
            self.store.create(manifest.resource, namespace, manifest.body)
        else:
            self.store.replace(manifest.resource, namespace, name, manifest.body)
        if manifest.values_digest:
            self._values[manifest.key] = manifest.values_digest

    def _prune(self, inventory_id: str) -> None:
        """Delete an object that left Git; a Kustomization takes what it applied with it."""
        namespace, name, _group, kind = inventory_id.split("_", 3)
        if kind not in self.store.by_kind:
            return
        found = self._get(kind, namespace, name)
        if found is None:
            return
        if kind == KUSTOMIZATION and found["spec"].get("prune"):
            for entry in ((found.get("status") or {}).get("inventory") or {}).get("entries") or []:
                self._prune(entry["id"])
        with contextlib.suppress(ApiError):
            self.store.delete(self._resource(kind), namespace, name)
        self._last_step.pop((kind, namespace, name), None)
        self._values.pop((kind, namespace, name), None)

    # -- helm-controller --------------------------------------------------------------------
    def _reconcile_release(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        key: Key = (HELM_RELEASE, namespace, name)
        values = self._values.get(key, "")
        history = (obj.get("status") or {}).get("history") or [{}]
        released = _current(obj) and (not values or history[0].get("configDigest") == values)
        if released or not self._due(key):
            return
        if not _reconciling(obj):
            self.flux.progressing(HELM_RELEASE, name, "", namespace=namespace)
            self._stepped(key)
            return
        done = self.flux.released(name, namespace=namespace, config_digest=values)
        ready = _ready(done) or {}
        self.flux.event(
            HELM_RELEASE,
            name,
            ready.get("reason", ""),
            ready.get("message", ""),
            namespace=namespace,
        )
        self._stepped(key)


class _NotYet(Exception):
    """The branch moved on since the source stored its artifact."""


def _is_kustomize(doc: dict[str, Any]) -> bool:
    """A kustomize file: a Kustomization or a Component (an overlay Flux adds to the root)."""
    return doc.get("kind") in ("Kustomization", "Component") and str(
        doc.get("apiVersion", "")
    ).startswith(KUSTOMIZE_API)


class SimulatedCluster:
    """The emulator, the simulated controllers and the Flux watcher, until `stop` is set."""

    def __init__(
        self,
        *,
        git: GitBackend | None = None,
        step_seconds: float | None = None,
        tick_seconds: float = TICK_SECONDS,
        stop: threading.Event | None = None,
    ) -> None:
        from .sync import backend

        self.stop = stop or threading.Event()
        self.kube = KubeEmulator(bookmark_seconds=1.0)
        step = settings.SIMULATED_CLUSTER_STEP_SECONDS if step_seconds is None else step_seconds
        self.flux = SimulatedFlux(self.kube, git or backend(), step_seconds=step)
        self.tick_seconds = tick_seconds
        self._threads: list[threading.Thread] = []

    def start(self) -> SimulatedCluster:
        from .flux import Backoff, ClusterWatcher

        self.kube.up()
        self.flux.bootstrap()
        watcher = ClusterWatcher(
            CLUSTER_NAME,
            self.kube.api_client(),
            stop=self.stop,
            backoff=lambda: Backoff(0.05, 1.0),
        )
        for target, name in (
            (self._controllers, "simulated-flux"),
            (watcher.run, "flux-simulated"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.warning(
            "SIMULATED_CLUSTER: a simulated Kubernetes API with a simulated Flux runs at %s; "
            "nothing is deployed anywhere",
            self.kube.url,
        )
        return self

    def _controllers(self) -> None:
        while not self.stop.wait(self.tick_seconds):
            try:
                self.flux.tick()
            except Exception:
                log.exception("simulated Flux pass failed")
            finally:
                close_old_connections()

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.kube.down()

    def __enter__(self) -> SimulatedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
