"""Repository, branch and label naming (SPEC §4): deterministic, never free text."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings

BRANCH_BY_ENV_TYPE = {
    "dev": "develop",
    "stg": "staging",
    "prod": "main",
    "uat": "uat",
    "poc": "poc",
}
LABEL_PREFIX = "openova.io/"
MANAGED_BY = {"openova.io/managed-by": "flux", "app.kubernetes.io/managed-by": "flux"}
CLUSTER_LABEL_KEYS = (
    "provider",
    "region",
    "building-block",
    "env-type",
    "sovereign",
    "host-cluster",
)
TENANT_LABEL_KEYS = (
    "organization",
    "environment",
    "vcluster",
    "application",
    "blueprint",
    "blueprint-version",
)


def label_key(name: str) -> str:
    """`openova.io/<name>` for one of the label names above (a typo fails at import)."""
    if name not in CLUSTER_LABEL_KEYS + TENANT_LABEL_KEYS:
        raise ValueError(f"unknown label {name!r}")
    return LABEL_PREFIX + name


# Every label key, in the order pickers and validation list them (RBAC scope terms use them).
LABEL_KEYS = tuple(label_key(name) for name in CLUSTER_LABEL_KEYS + TENANT_LABEL_KEYS)
ORGANIZATION_LABEL = label_key("organization")
ENVIRONMENT_LABEL = label_key("environment")
ENV_TYPE_LABEL = label_key("env-type")
APPLICATION_LABEL = label_key("application")
HOST_CLUSTER_LABEL = label_key("host-cluster")


def config_repo() -> tuple[str, str, str]:
    """(owner, repo, branch) of the Sovereign's catalyst-config repo."""
    return settings.GIT_SYSTEM_OWNER, settings.GIT_CONFIG_REPO, settings.GIT_CONFIG_BRANCH


def branch_for(env_type: str) -> str:
    return BRANCH_BY_ENV_TYPE[env_type]


def labels(**values: str | None) -> dict[str, str]:
    """`openova.io/<key>` labels from keyword values (underscores become dashes) plus managed-by."""
    out = {}
    for key, value in values.items():
        name = key.replace("_", "-")
        if name not in CLUSTER_LABEL_KEYS + TENANT_LABEL_KEYS:
            raise ValueError(f"unknown label {name!r}")
        if value:
            out[LABEL_PREFIX + name] = str(value)
    out.update(MANAGED_BY)
    return out


# --- object names in shared namespaces (issue 10) ------------------------------------------------
# Every tenant's Flux GitRepository and Kustomizations live in `flux-system` of the management
# cluster, rendered into the one catalyst-config repo; their names must never meet. Slugs may
# contain dashes, so joining them with dashes is ambiguous (`qux` + `dev-prod-web` and `qux-dev` +
# `prod-web`). The name is a readable prefix plus a digest of the unambiguous identity tuple; the
# real identities travel as labels, which is what the watcher and the pages read.
K8S_NAME_MAX = 63
DIGEST_CHARS = 10


def digest(*parts: str) -> str:
    """A short hex digest of the parts, encoded so that no two tuples share an encoding."""
    encoded = json.dumps(list(parts), separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:DIGEST_CHARS]


def scoped_name(prefix: str, *identity: str) -> str:
    """`<prefix, shortened>-<digest(identity)>`: a DNS-1123 label (≤ 63 characters) unique per
    identity tuple, readable for the people looking at the cluster."""
    room = K8S_NAME_MAX - DIGEST_CHARS - 1
    head = prefix[:room].rstrip("-.") or "x"
    return f"{head}-{digest(*identity)}"


def flux_object_name(org: str, env: str, app: str, cluster: str | None = None) -> str:
    """Name of an Application's GitRepository (no cluster) or of its Kustomization for one host
    cluster, in the shared `flux-system` namespace."""
    prefix = f"{env}-{app}-{cluster}" if cluster else f"{env}-{app}"
    return scoped_name(prefix, org, env, app, cluster or "")


def generator_name(app: str, key: str) -> str:
    """An Application's Password generator for one secret key, in its Environment's namespace
    (`<app>-<key>` alone would make app `a` key `b-c` meet app `a-b` key `c`)."""
    return scoped_name(f"{app}-{key}", app, key)


def tenant_service_account(org: str) -> str:
    """The ServiceAccount Flux impersonates for an Organization's objects on a host cluster."""
    return f"tenant-{org}"


# Names an Application may not take: its name becomes objects in the Environment's namespace and a
# repository of the Organization; these belong to Kubernetes, Flux and the platform.
RESERVED_APP_NAMES = frozenset(
    {"default", "flux-system", "kube-system", "kube-public", "kube-node-lease", "catalyst"}
    | {"openova", "system", "shared-blueprints", "gitea", "flux", "cert-manager", "ingress"}
)
RESERVED_APP_PREFIXES = ("kube-", "flux-", "catalyst-", "openova-")


def reserved_app_name(name: str) -> bool:
    return name in RESERVED_APP_NAMES or name.startswith(RESERVED_APP_PREFIXES)


# --- an Application's repository layout (issue 16) ------------------------------------------------
# The base, shared by every Environment's branch (what a promotion carries): the configuration, a
# root kustomization and the secret references. Per Environment and host cluster: an overlay, a
# kustomize Component that Flux adds to the root (`spec.components`); kustomize refuses an overlay
# that lives below its own base, so the root composes the overlay rather than the other way round.
APP_CONFIG_FILE = "values.yaml"
APP_KUSTOMIZATION = "kustomization.yaml"
APP_CODEOWNERS = "CODEOWNERS"
APP_SECRETS_DIR = "secrets/"
APP_OVERLAYS_DIR = "overlays/"
PROMOTION_BRANCH_PREFIX = "promote/"


def overlay_dir(env: str, cluster: str) -> str:
    """`overlays/<env>/<host-cluster>/`: one Environment's placement, size and replicas in one
    region (slugs hold no `/`, so the path is unambiguous)."""
    return f"{APP_OVERLAYS_DIR}{env}/{cluster}/"


def legacy_app_dir(cluster: str, app: str) -> str:
    """Where the portal rendered an Application's files before the overlay layout; the sync
    deletes the rendered files found there (a person's own files there are kept)."""
    return f"clusters/{cluster}/applications/{app}/"


def promotion_branch(origin: str, target_env: str, promotion_id: int) -> str:
    return f"{PROMOTION_BRANCH_PREFIX}{origin}-to-{target_env}-{promotion_id}"
