"""Render an Application's desired files (SPEC §4, §7) as {path: text}; gitops validates and commits.

App repo `<org>/<app>`, branch by env type. The layout (paths in `gitops.naming`) separates what
every Environment shares from what is each Environment's own, so that promoting (merging `develop`
into `main`, or the portal's promotion pull request) carries the base and never placement:

- the base: `values.yaml` (the Application's configuration, which people may edit and push: see
  gitsync.py), `kustomization.yaml` (the root kustomization: the resources every Environment
  shares) and `secrets/externalsecret.yaml` (ExternalSecret references only, when the Blueprint
  has password fields);
- per Environment and host cluster, `overlays/<env>/<host-cluster>/`: a kustomize Component
  (`kustomization.yaml`: namespace, SPEC §4 labels, the `<app>-values` ConfigMap) with the chart
  (`helmrelease.yaml`) and the chart values for that Environment's size, role and wiring
  (`values.yaml`);
- `CODEOWNERS`: the approvers of the Environment's policy, on its branch.

Flux builds the root with one overlay (`spec.path: ./`, `spec.components`): an overlay cannot
include the directory above it (kustomize refuses the cycle). Other files are kept, including
another Environment's overlays that a merge between branches brings along (nothing of this
Environment builds them). Repos in the old layout (`clusters/<host-cluster>/applications/<app>/`)
are rewritten by the next sync: the rendered files there are owned, so they are deleted.

In `system/catalyst-config`, under `applications/<org>/<env>/<app>/`, a Flux GitRepository for the
app repo and one Flux Kustomization per region. (`organizations/<org>/` belongs to
orgs/manifests.py, which prunes it.)

Secrets: a password field becomes a key of the Secret `<app>-credentials`, generated in-cluster by
an ExternalSecret Password generator and injected by the HelmRelease `valuesFrom` targetPath, so
the value exists only in the cluster.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml
from django.conf import settings

from gitops import naming
from gitops.sync import Desired
from orgs.models import Environment, HostCluster, Sovereign

from . import schema_form, wiring
from .models import Application, AppState, Placement
from .when import SecretRef

FLUX_NAMESPACE = "flux-system"
STANDBY_REPLICA_KEYS = ("replicas", "instances")
ANNOTATION_PREFIX = "catalyst.openova.io/"


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Plain YAML: a dict used twice is written twice, never as an anchor and alias (`&id001`).
    libyaml's emitter when available (the same output, several times faster)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: same safety


def dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def dump_all(docs: list[Any]) -> str:
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


secret_key = wiring.secret_key


def secret_name(app: Application) -> str:
    return wiring.secret_name(app.name)


def chart_path(spec: dict[str, Any], config_path: str) -> str | None:
    """Where a config value goes in the chart values (None: the chart does not take it)."""
    mapping = (spec.get("manifests") or {}).get("valuesMap") or {}
    return mapping.get(config_path, config_path)


@dataclass(frozen=True)
class Rendered:
    """An Application's chart values for one role (active or standby), and the Secret
    references the HelmRelease injects (`valuesFrom`: targetPath → SecretRef)."""

    values: dict[str, Any]
    secrets: list[tuple[str, SecretRef]]
    wires: list[wiring.Wire]


def render_values(
    app: Application, dependencies: dict[str, Application], *, standby: bool
) -> Rendered:
    """Chart values: base `values` → size overlay → config through `valuesMap` → `computed` →
    dependency `wiring` → standby values. Password fields and wired Secret references go to
    `secrets`, never into the values."""
    spec = app.blueprint_version.spec
    manifests = spec.get("manifests") or {}
    values = deep_merge(
        manifests.get("values") or {}, (manifests.get("overlays") or {}).get(app.size) or {}
    )
    config_schema = app.blueprint_version.config_schema
    passwords = schema_form.secret_paths(config_schema)
    secrets: list[tuple[str, SecretRef]] = []
    for prop in schema_form.walk(config_schema):
        target = chart_path(spec, prop.dotted)
        if target is None:
            continue
        if prop.dotted in passwords:
            secrets.append((target, SecretRef(secret_name(app), secret_key(prop.dotted))))
            continue
        value = schema_form.get_path(app.values, prop.path)
        if value is not None:
            wiring.set_value(values, target, copy.deepcopy(value))
    wires = wiring.wires(app, dependencies)
    for wire in wires:
        if wire.value is None:
            continue  # an expression giving null sets nothing
        if isinstance(wire.value, SecretRef) and wire.path.rsplit(".", 1)[-1] != "secretKeyRef":
            secrets.append((wire.path, wire.value))
        elif isinstance(wire.value, SecretRef):  # a Kubernetes secretKeyRef: where, not what
            wiring.set_value(values, wire.path, {"name": wire.value.name, "key": wire.value.key})
        else:
            wiring.set_value(values, wire.path, copy.deepcopy(wire.value))
    if standby:
        values = _standby(spec, values)
    return Rendered(values=values, secrets=secrets, wires=wires)


def _standby(spec: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    manifests = spec.get("manifests") or {}
    if "standby" in manifests:
        return deep_merge(values, manifests["standby"] or {})
    for config_path, target in (manifests.get("valuesMap") or {}).items():
        if target and config_path.split(".")[-1] in STANDBY_REPLICA_KEYS:
            wiring.set_value(values, target, 0)
    return values


def chart_values(
    app: Application, *, standby: bool, dependencies: dict[str, Application] | None = None
) -> dict[str, Any]:
    deps = dependency_apps(app) if dependencies is None else dependencies
    return render_values(app, deps, standby=standby).values


def dependency_apps(
    app: Application, peers: dict[str, Application] | None = None
) -> dict[str, Application]:
    """alias → the Application serving it: from `peers` (a plan's unsaved Applications), else the
    Environment's rows (one query)."""
    peers = peers or {}
    wanted = {alias: name for alias, name in (app.dependencies or {}).items()}
    missing = [name for name in wanted.values() if name not in peers]
    found = dict(peers)
    if missing:
        rows = Application.objects.filter(
            environment_id=app.environment_id, name__in=missing
        ).select_related("blueprint_version__blueprint", "environment__organization")
        found.update({row.name: row for row in rows})
    return {alias: found[name] for alias, name in wanted.items() if name in found}


def _labels(app: Application, cluster: HostCluster | None, sovereign: Sovereign) -> dict[str, str]:
    env = app.environment
    return naming.labels(
        provider=cluster.provider if cluster else None,
        region=cluster.region if cluster else None,
        building_block=cluster.building_block if cluster else None,
        env_type=env.env_type,
        sovereign=sovereign.fqdn,
        host_cluster=cluster.name if cluster else None,
        organization=env.organization.slug,
        environment=env.name,
        application=app.name,
        blueprint=app.blueprint_version.blueprint.name,
        blueprint_version=app.blueprint_version.version,
    )


def _helm_repository(app: Application, labels: dict[str, str]) -> dict[str, Any]:
    chart = app.blueprint_version.chart
    spec: dict[str, Any] = {"interval": "1h", "url": chart["repository"]}
    if chart["repository"].startswith("oci://"):
        spec["type"] = "oci"
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": f"{app.name}-charts", "labels": labels},
        "spec": spec,
    }


def _helm_release(
    app: Application, labels: dict[str, str], rendered: Rendered, *, standby: bool
) -> dict[str, Any]:
    chart = app.blueprint_version.chart
    values_from: list[dict[str, Any]] = [
        {"kind": "ConfigMap", "name": f"{app.name}-values", "valuesKey": "values.yaml"}
    ]
    for path, ref in rendered.secrets:
        values_from.append(
            {
                "kind": "Secret",
                "name": ref.name,
                "valuesKey": ref.key,
                "targetPath": wiring.helm_path(path),
            }
        )
    deps = ",".join(f"{a}={n}" for a, n in sorted((app.dependencies or {}).items()))
    suspended = not app.environment.organization.is_writable
    role = "suspended" if suspended else "standby" if standby else "active"
    annotations = {f"{ANNOTATION_PREFIX}role": role}
    if deps:
        annotations[f"{ANNOTATION_PREFIX}dependencies"] = deps
    release: dict[str, Any] = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": app.name, "labels": labels, "annotations": annotations},
        "spec": {
            "interval": "10m",
            "releaseName": app.name,
            # helm-controller installs as the tenant, into and recording in its namespace only
            "serviceAccountName": naming.tenant_service_account(app.environment.organization.slug),
            "targetNamespace": app.environment.name,
            "storageNamespace": app.environment.name,
            "chart": {
                "spec": {
                    "chart": chart["name"],
                    "version": chart["version"],
                    "sourceRef": {"kind": "HelmRepository", "name": f"{app.name}-charts"},
                }
            },
            "install": {"remediation": {"retries": 3}},
            "upgrade": {"remediation": {"retries": 3, "remediateLastFailure": True}},
            "valuesFrom": values_from,
        },
    }
    if suspended:  # whatever the chart: its workloads are scaled to zero after rendering
        release["spec"]["postRenderers"] = [{"kustomize": {"patches": SCALE_TO_ZERO}}]
    return release


# A suspended (or archived) Organization's workloads are scaled to zero by a commit, for every
# chart alike: helm-controller patches what the chart rendered. The Kustomizations keep
# reconciling (a Flux `suspend` would stop them applying the scale-down too).
SCALE_TO_ZERO = [
    {
        "target": {"group": "apps", "version": "v1", "kind": kind},
        "patch": "- op: add\n  path: /spec/replicas\n  value: 0\n",
    }
    for kind in ("Deployment", "StatefulSet")
]


def _external_secret(app: Application, paths: list[str]) -> list[dict[str, Any]]:
    """The base's secret references: the same on every Environment's branch (the overlay's
    Component gives them their namespace and labels)."""
    docs: list[dict[str, Any]] = []
    data_from = []
    for path in paths:
        generator = naming.generator_name(app.name, secret_key(path))
        docs.append(
            {
                "apiVersion": "generators.external-secrets.io/v1alpha1",
                "kind": "Password",
                "metadata": {"name": generator},
                "spec": {
                    "length": 32,
                    "digits": 6,
                    "symbols": 0,
                    "noUpper": False,
                    "allowRepeat": True,
                },
            }
        )
        data_from.append(
            {
                "sourceRef": {
                    "generatorRef": {
                        "apiVersion": "generators.external-secrets.io/v1alpha1",
                        "kind": "Password",
                        "name": generator,
                    }
                },
                "rewrite": [{"regexp": {"source": "^password$", "target": secret_key(path)}}],
            }
        )
    docs.append(
        {
            "apiVersion": "external-secrets.io/v1beta1",
            "kind": "ExternalSecret",
            "metadata": {"name": secret_name(app)},
            "spec": {
                "refreshInterval": "0",
                "target": {
                    "name": secret_name(app),
                    "creationPolicy": "Owner",
                    "deletionPolicy": "Retain",
                },
                "dataFrom": data_from,
            },
        }
    )
    return docs


def _root_kustomization(app: Application, with_secrets: bool) -> dict[str, Any]:
    """The base every Environment builds (with its own overlay as a Component)."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "metadata": {"name": app.name},
        "resources": [SECRETS_FILE] if with_secrets else [],
    }


def _component(app: Application, labels: dict[str, str]) -> dict[str, Any]:
    """One Environment's overlay in one region: its namespace and labels on everything (the base
    too), the chart, and the ConfigMap of chart values the HelmRelease reads."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": app.name},
        "namespace": app.environment.name,
        "labels": [{"pairs": labels, "includeSelectors": False}],
        "resources": ["helmrelease.yaml"],
        "configMapGenerator": [{"name": f"{app.name}-values", "files": ["values.yaml"]}],
        "generatorOptions": {"disableNameSuffixHash": True, "labels": labels},
    }


def overlay_dir(app: Application, cluster_name: str) -> str:
    return naming.overlay_dir(app.environment.name, cluster_name)


class Inputs:
    """What rendering reads besides the Application: the Sovereign, the host clusters, the
    Environment's regions, its policy's approvers and the dependencies. Read once for all that is
    rendered together (a plan's Applications, a delivery's app tree and config tree) and passed
    down, instead of once per tree; a snapshot, for one rendering only."""

    def __init__(self, sovereign: Sovereign | None = None) -> None:
        self._sovereign = sovereign
        self._clusters: dict[str, HostCluster | None] = {}
        self._regions: dict[int, list[str]] = {}
        self._owners: dict[int, str | None] = {}
        self._dependencies: dict[str, dict[str, Application]] = {}

    @property
    def sovereign(self) -> Sovereign:
        if self._sovereign is None:
            self._sovereign = Sovereign.current()
        return self._sovereign

    def regions(self, env: Environment) -> list[str]:
        """The Environment's host cluster names (prefetched with it where the caller did so)."""
        if env.pk not in self._regions:
            rows = list(env.regions.all())
            self._clusters.update({c.name: c for c in rows})
            self._regions[env.pk] = [c.name for c in rows]
        return self._regions[env.pk]

    def clusters(self, app: Application) -> list[HostCluster]:
        """The host clusters of the app's regions, in its order (the active one first)."""
        self.regions(app.environment)  # an app's regions are the Environment's: read with them
        missing = [name for name in app.regions if name not in self._clusters]
        if missing:
            found = {c.name: c for c in HostCluster.objects.filter(name__in=missing)}
            self._clusters.update({name: found.get(name) for name in missing})
        return [c for c in (self._clusters[name] for name in app.regions) if c is not None]

    def codeowners(self, app: Application) -> str | None:
        if app.environment_id not in self._owners:
            self._owners[app.environment_id] = codeowners(app)
        return self._owners[app.environment_id]

    def dependencies(
        self, app: Application, peers: dict[str, Application] | None
    ) -> dict[str, Application]:
        if app.name not in self._dependencies:
            self._dependencies[app.name] = dependency_apps(app, peers)
        return self._dependencies[app.name]


VALUES_FILE = naming.APP_CONFIG_FILE
CODEOWNERS = naming.APP_CODEOWNERS
ROOT_KUSTOMIZATION = naming.APP_KUSTOMIZATION
SECRETS_FILE = f"{naming.APP_SECRETS_DIR}externalsecret.yaml"
BASE_FILES = (VALUES_FILE, ROOT_KUSTOMIZATION, SECRETS_FILE)
OVERLAY_FILES = ("kustomization.yaml", "helmrelease.yaml", "values.yaml")
LEGACY_FILES = ("kustomization.yaml", "helmrelease.yaml", "values.yaml", "externalsecret.yaml")


def owned_paths(app: Application, inputs: Inputs | None = None) -> tuple[str, ...]:
    """The app repo's files the portal owns on this Environment's branch: the base, `CODEOWNERS`
    and the overlays of the Environment's host clusters — plus the files the old layout rendered
    for those clusters, which the sync therefore deletes. Anything else is kept: a README, an
    overlay file someone adds, and another Environment's overlays that a merge between branches
    brings along (no Flux Kustomization of this Environment builds them)."""
    clusters = sorted({*(inputs or Inputs()).regions(app.environment), *(app.regions or [])})
    overlays = [f"{overlay_dir(app, c)}{name}" for c in clusters for name in OVERLAY_FILES]
    legacy = [
        f"{naming.legacy_app_dir(c, app.name)}{name}" for c in clusters for name in LEGACY_FILES
    ]
    return (*BASE_FILES, CODEOWNERS, *overlays, *legacy)


def codeowners(app: Application) -> str | None:
    """`CODEOWNERS` from the approvers of the Environment's policy (`pr-required` rules): users as
    `@login`, groups as the Organization's teams `@<org>/<group>`; None without approvers."""
    from .models import EnvironmentPolicy

    policy = EnvironmentPolicy.objects.filter(environment_id=app.environment_id).first()
    owners: list[str] = []
    for rule in (policy.rules if policy else []) or []:
        if rule.get("type") != "pr-required":
            continue
        wanted = rule.get("approvers") or {}
        owners += [f"@{u}" for u in wanted.get("users") or []]
        org = app.environment.organization.slug
        owners += [f"@{org}/{g}" for g in wanted.get("groups") or []]
    if not owners:
        return None
    env = app.environment.name
    return (
        f"# {env}: approvers from its EnvironmentPolicy (policies/{env}-policy.yaml)\n"
        f"* {' '.join(dict.fromkeys(owners))}\n"
    )


def values_text(app: Application, current: str | None = None) -> str:
    """The configuration file: the Application's values (configSchema space, no secrets). Git's
    own text is kept when it says the same (comments and key order someone chose survive)."""
    if current is not None and config_of(app, current) == app.values:
        return current
    bp = app.blueprint_version
    head = (  # the same in every Environment: this file is the base a promotion carries
        f"# {app.name}: {bp.blueprint.name} {bp.version}\n"
        "# The Application's configuration, checked against the Blueprint's configSchema; the\n"
        "# base every Environment shares (placement and size are in overlays/<env>/).\n"
        "# Edit and push (or use the portal); passwords are never here: they are generated in\n"
        "# the cluster.\n"
    )
    return head + (dump(app.values) if app.values else "{}\n")


def config_of(app: Application, text: str) -> dict[str, Any] | None:
    """The validated configuration a values file holds, or None when it is not valid."""
    from django.core.exceptions import ValidationError

    try:
        loaded = yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader, in C)
        return schema_form.validate(app.blueprint_version.config_schema, loaded or {})
    except (yaml.YAMLError, ValidationError):
        return None


def app_tree(
    app: Application,
    *,
    sovereign: Sovereign | None = None,
    peers: dict[str, Application] | None = None,
    current_values: str | None = None,
    base: dict[str, str] | None = None,
    inputs: Inputs | None = None,
) -> Desired:
    """The app repo's desired files (none while uninstalling). `peers`: Applications of the same
    plan that are not saved yet (their outputs wire into this one). `current_values`: the
    configuration file as Git holds it; `base`: the owned files as the portal last knew them
    (sync then refuses to overwrite a change made in Git since). `inputs`: what was read already
    for other trees rendered with this one."""
    env = app.environment
    inputs = inputs or Inputs(sovereign)
    files: dict[str, str] = {}
    if app.state != AppState.UNINSTALLING:
        secrets = schema_form.secret_paths(app.blueprint_version.config_schema)
        deps = inputs.dependencies(app, peers)
        files[VALUES_FILE] = values_text(app, current_values)
        files[ROOT_KUSTOMIZATION] = dump(_root_kustomization(app, bool(secrets)))
        if secrets:
            files[SECRETS_FILE] = dump_all(_external_secret(app, secrets))
        owners = inputs.codeowners(app)
        if owners:
            files[CODEOWNERS] = owners
        for index, cluster in enumerate(inputs.clusters(app)):
            files.update(overlay_files(app, cluster, inputs.sovereign, deps, index=index))
    return Desired(
        owner=env.organization.slug,
        repo=app.name,
        branch=naming.branch_for(env.env_type),
        root="",
        files=files,
        owned=owned_paths(app, inputs),
        base=base,
        watch=True,
    )


def overlay_files(
    app: Application,
    cluster: HostCluster,
    sovereign: Sovereign,
    deps: dict[str, Application],
    *,
    index: int,
) -> dict[str, str]:
    """One region's overlay of the Environment (the first region is the active one)."""
    standby = app.placement == Placement.HOT_STANDBY and index > 0
    labels = _labels(app, cluster, sovereign)
    rendered = render_values(app, deps, standby=standby)
    root = overlay_dir(app, cluster.name)
    return {
        f"{root}kustomization.yaml": dump(_component(app, labels)),
        f"{root}helmrelease.yaml": dump_all(
            [_helm_repository(app, labels), _helm_release(app, labels, rendered, standby=standby)]
        ),
        f"{root}values.yaml": dump(rendered.values),
    }


def config_root(app: Application) -> str:
    env = app.environment
    return f"applications/{env.organization.slug}/{env.name}/{app.name}/"


def repo_url(org_slug: str, repo: str, sovereign: Sovereign) -> str:
    base = settings.GITEA_URL or f"https://gitea.{sovereign.fqdn}"
    return f"{base.rstrip('/')}/{org_slug}/{repo}.git"


def flux_name(app: Application, cluster_name: str | None = None) -> str:
    env = app.environment
    return naming.flux_object_name(env.organization.slug, env.name, app.name, cluster_name)


def config_tree(
    app: Application,
    *,
    sovereign: Sovereign | None = None,
    peers: dict[str, Application] | None = None,
    inputs: Inputs | None = None,
) -> Desired:
    """The Flux GitRepository + Kustomizations for the app in system/catalyst-config."""
    owner, repo, branch = naming.config_repo()
    root = config_root(app)
    files: dict[str, str] = {}
    if app.state != AppState.UNINSTALLING:
        inputs = inputs or Inputs(sovereign)
        sovereign = inputs.sovereign
        env = app.environment
        source = flux_name(app)
        files[f"{root}gitrepository.yaml"] = dump(
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {
                    "name": source,
                    "namespace": FLUX_NAMESPACE,
                    "labels": _labels(app, None, sovereign),
                },
                "spec": {
                    "interval": "1m",
                    "url": repo_url(env.organization.slug, app.name, sovereign),
                    "ref": {"branch": naming.branch_for(env.env_type)},
                    "secretRef": {"name": f"{env.organization.slug}-git"},
                },
            }
        )
        deps = {dep.name: list(dep.regions) for dep in inputs.dependencies(app, peers).values()}
        for cluster in inputs.clusters(app):
            depends_on = [
                {
                    "name": naming.flux_object_name(
                        env.organization.slug, env.name, dep, cluster.name
                    )
                }
                for dep, regions in sorted(deps.items())
                if cluster.name in regions
            ]
            spec: dict[str, Any] = {
                "interval": "10m",
                # the root kustomization (the base) with this Environment's overlay of the region
                "path": "./",
                "components": [f"./{overlay_dir(app, cluster.name).rstrip('/')}"],
                "prune": True,
                "wait": True,
                "timeout": "10m",
                "sourceRef": {"kind": "GitRepository", "name": source},
                "targetNamespace": env.name,
                # on the host cluster, Flux acts as the tenant's ServiceAccount, never as itself
                "serviceAccountName": naming.tenant_service_account(env.organization.slug),
                "kubeConfig": {"secretRef": {"name": f"{cluster.name}-kubeconfig"}},
            }
            if depends_on:
                spec["dependsOn"] = depends_on
            files[f"{root}kustomization-{cluster.name}.yaml"] = dump(
                {
                    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                    "kind": "Kustomization",
                    "metadata": {
                        "name": flux_name(app, cluster.name),
                        "namespace": FLUX_NAMESPACE,
                        "labels": _labels(app, cluster, sovereign),
                    },
                    "spec": spec,
                }
            )
    return Desired(owner=owner, repo=repo, branch=branch, root=root, files=files)


def trees(
    app: Application,
    *,
    peers: dict[str, Application] | None = None,
    inputs: Inputs | None = None,
) -> list[Desired]:
    inputs = inputs or Inputs()
    return [
        app_tree(app, peers=peers, inputs=inputs),
        config_tree(app, peers=peers, inputs=inputs),
    ]
