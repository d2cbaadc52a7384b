"""Repository, branch and label naming (SPEC §4): deterministic, never free text."""

from __future__ import annotations

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
