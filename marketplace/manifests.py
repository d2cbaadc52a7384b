"""Render an Application's desired files (SPEC §4, §7) as {path: text}; gitops validates and commits.

App repo `<org>/<app>`, branch by env type, per region
`clusters/<host-cluster>/applications/<app>/{kustomization.yaml,helmrelease.yaml,values.yaml}`
(+ `externalsecret.yaml` when the Blueprint has password fields). In `system/catalyst-config`,
under `applications/<org>/<env>/<app>/`, a Flux GitRepository for the app repo and one Flux
Kustomization per region. (`organizations/<org>/` belongs to orgs/manifests.py, which prunes it.)

Secrets: a password field becomes a key of the Secret `<app>-credentials`, generated in-cluster by
an ExternalSecret Password generator and injected by the HelmRelease `valuesFrom` targetPath, so
the value exists only in the cluster.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from django.conf import settings

from gitops import naming
from gitops.sync import Desired
from orgs.models import HostCluster, Sovereign

from . import schema_form
from .models import Application, AppState, Placement

FLUX_NAMESPACE = "flux-system"
STANDBY_REPLICA_KEYS = ("replicaCount", "replicas")


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def dump_all(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def secret_key(path: str) -> str:
    return path.replace(".", "-").replace("_", "-").lower()


def secret_name(app: Application) -> str:
    return f"{app.name}-credentials"


def chart_path(spec: dict[str, Any], config_path: str) -> str:
    return str(((spec.get("manifests") or {}).get("valuesMap") or {}).get(config_path, config_path))


def _set_dotted(values: dict[str, Any], dotted: str, value: Any) -> None:
    schema_form.set_path(values, dotted.split("."), value)


def chart_values(app: Application, *, standby: bool) -> dict[str, Any]:
    spec = app.blueprint_version.spec
    manifests = spec.get("manifests") or {}
    values = copy.deepcopy((manifests.get("overlays") or {}).get(app.size) or {})
    secrets = set(schema_form.secret_paths(app.blueprint_version.config_schema))
    for prop in schema_form.walk(app.blueprint_version.config_schema):
        if prop.dotted in secrets:
            continue
        value = schema_form.get_path(app.values, prop.path)
        if value is not None:
            _set_dotted(values, chart_path(spec, prop.dotted), value)
    suspended = not app.environment.organization.is_writable  # suspended or archived
    if standby or suspended:  # scaled to zero by a commit; Flux applies it
        for key in STANDBY_REPLICA_KEYS:
            values[key] = 0
        for config_path, target in (manifests.get("valuesMap") or {}).items():
            if config_path.split(".")[-1] in ("replicas", "instances"):
                _set_dotted(values, target, 0)
    values["catalyst"] = {
        "application": app.name,
        "environment": app.environment.name,
        "role": "suspended" if suspended else "standby" if standby else "active",
        "dependencies": dict(sorted(app.dependencies.items())),
    }
    return values


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


def _helm_release(app: Application, labels: dict[str, str]) -> dict[str, Any]:
    chart = app.blueprint_version.chart
    spec = app.blueprint_version.spec
    values_from: list[dict[str, Any]] = [
        {"kind": "ConfigMap", "name": f"{app.name}-values", "valuesKey": "values.yaml"}
    ]
    for path in schema_form.secret_paths(app.blueprint_version.config_schema):
        values_from.append(
            {
                "kind": "Secret",
                "name": secret_name(app),
                "valuesKey": secret_key(path),
                "targetPath": chart_path(spec, path),
            }
        )
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": app.name, "labels": labels},
        "spec": {
            "interval": "10m",
            "releaseName": app.name,
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


def _external_secret(
    app: Application, paths: list[str], labels: dict[str, str]
) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    data_from = []
    for path in paths:
        generator = f"{app.name}-{secret_key(path)}"[:63].rstrip("-")
        docs.append(
            {
                "apiVersion": "generators.external-secrets.io/v1alpha1",
                "kind": "Password",
                "metadata": {"name": generator, "labels": labels},
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
            "metadata": {"name": secret_name(app), "labels": labels},
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


def _kustomize(app: Application, labels: dict[str, str], with_secrets: bool) -> dict[str, Any]:
    resources = ["helmrelease.yaml"] + (["externalsecret.yaml"] if with_secrets else [])
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "metadata": {"name": app.name},
        "namespace": app.environment.name,
        "labels": [{"pairs": labels, "includeSelectors": False}],
        "resources": resources,
        "configMapGenerator": [{"name": f"{app.name}-values", "files": ["values.yaml"]}],
        "generatorOptions": {"disableNameSuffixHash": True, "labels": labels},
    }


def app_dir(cluster_name: str, app_name: str) -> str:
    return f"clusters/{cluster_name}/applications/{app_name}/"


def _clusters(app: Application) -> list[HostCluster]:
    by_name = {c.name: c for c in HostCluster.objects.filter(name__in=app.regions)}
    return [by_name[name] for name in app.regions if name in by_name]


def app_tree(app: Application, *, sovereign: Sovereign | None = None) -> Desired:
    """The app repo's desired files (none while uninstalling)."""
    env = app.environment
    files: dict[str, str] = {}
    if app.state != AppState.UNINSTALLING:
        sovereign = sovereign or Sovereign.current()
        secrets = schema_form.secret_paths(app.blueprint_version.config_schema)
        for index, cluster in enumerate(_clusters(app)):
            standby = app.placement == Placement.HOT_STANDBY and index > 0
            labels = _labels(app, cluster, sovereign)
            root = app_dir(cluster.name, app.name)
            files[f"{root}kustomization.yaml"] = dump(_kustomize(app, labels, bool(secrets)))
            files[f"{root}helmrelease.yaml"] = dump_all(
                [_helm_repository(app, labels), _helm_release(app, labels)]
            )
            files[f"{root}values.yaml"] = dump(chart_values(app, standby=standby))
            if secrets:
                files[f"{root}externalsecret.yaml"] = dump_all(
                    _external_secret(app, secrets, labels)
                )
    return Desired(
        owner=env.organization.slug,
        repo=app.name,
        branch=naming.branch_for(env.env_type),
        root="clusters/",
        files=files,
    )


def config_root(app: Application) -> str:
    env = app.environment
    return f"applications/{env.organization.slug}/{env.name}/{app.name}/"


def repo_url(org_slug: str, repo: str, sovereign: Sovereign) -> str:
    base = settings.GITEA_URL or f"https://gitea.{sovereign.fqdn}"
    return f"{base.rstrip('/')}/{org_slug}/{repo}.git"


def flux_name(app: Application, cluster_name: str | None = None) -> str:
    base = f"{app.environment.name}-{app.name}"
    return f"{base}-{cluster_name}" if cluster_name else base


def config_tree(app: Application, *, sovereign: Sovereign | None = None) -> Desired:
    """The Flux GitRepository + Kustomizations for the app in system/catalyst-config."""
    owner, repo, branch = naming.config_repo()
    root = config_root(app)
    files: dict[str, str] = {}
    if app.state != AppState.UNINSTALLING:
        sovereign = sovereign or Sovereign.current()
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
        deps = _dependency_regions(app)
        for cluster in _clusters(app):
            depends_on = [
                {"name": flux_name_for(env.name, dep, cluster.name)}
                for dep, regions in sorted(deps.items())
                if cluster.name in regions
            ]
            spec: dict[str, Any] = {
                "interval": "10m",
                "path": f"./{app_dir(cluster.name, app.name).rstrip('/')}",
                "prune": True,
                "wait": True,
                "timeout": "10m",
                "sourceRef": {"kind": "GitRepository", "name": source},
                "targetNamespace": env.name,
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


def flux_name_for(env_name: str, app_name: str, cluster_name: str) -> str:
    return f"{env_name}-{app_name}-{cluster_name}"


def _dependency_regions(app: Application) -> dict[str, list[str]]:
    names = list(app.dependencies.values())
    rows = Application.objects.filter(environment=app.environment, name__in=names).values_list(
        "name", "regions"
    )
    return {name: list(regions) for name, regions in rows}


def trees(app: Application) -> list[Desired]:
    sovereign = Sovereign.current()
    return [app_tree(app, sovereign=sovereign), config_tree(app, sovereign=sovereign)]
