"""Slug rules and reserved words of SPEC §4."""

from __future__ import annotations

import re

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{2,31}\Z")
ENV_TYPES = ("prod", "stg", "uat", "dev", "poc")
PROVIDERS = {
    "hetzner": "hz",
    "huawei": "hw",
    "oci": "oci",
    "aws": "aws",
    "gcp": "gcp",
    "azure": "az",
    "contabo": "ct",
}
BUILDING_BLOCKS = ("rtz", "dmz", "mgt")
RESERVED = frozenset(
    {"system", "flux", "crossplane", "catalyst", "gitea"}
    | set(PROVIDERS)
    | set(PROVIDERS.values())
    | set(BUILDING_BLOCKS)
    | set(ENV_TYPES)
    | set(
        [
            "api",
            "admin",
            "console",
            "gitea",
            "harbor",
            "keycloak",
            "www",
            "mail",
            "smtp",
            "imap",
            "vpn",
            "openova",
            "catalyst",
            "docs",
            "status",
            "app",
            "system",
            "openbao",
            "vault",
            "flux",
            "k8s",
            "marketplace",
        ]
    )
)


def slug_problem(slug: str) -> str | None:
    """Why `slug` cannot name an Organization, or None when it can (ignoring whether it is taken)."""
    if not slug:
        return "Enter a slug."
    if not SLUG_RE.match(slug):
        if not slug[0].isalpha() or not slug[0].islower():
            return "A slug must start with a lower-case letter."
        if len(slug) < 3 or len(slug) > 32:
            return "A slug must be 3 to 32 characters long."
        return "A slug may contain only lower-case letters, digits and dashes."
    if slug.endswith("-"):
        return "A slug cannot end with a dash."
    if slug in RESERVED or slug.startswith("kube-"):
        return f"“{slug}” is reserved by the platform."
    return None


def host_cluster_name(provider_code: str, region: str, building_block: str, env_type: str) -> str:
    return f"{provider_code}-{region}-{building_block}-{env_type}"


# Which host clusters (by their env type) an Environment of each type may be placed on: production
# runs only on production clusters, and development or proof-of-concept work never lands there;
# staging and UAT may share production-grade clusters.
CLUSTER_TYPES_FOR = {
    "prod": ("prod",),
    "stg": ("stg", "uat", "prod"),
    "uat": ("stg", "uat", "prod"),
    "dev": ("dev", "poc", "stg", "uat"),
    "poc": ("dev", "poc", "stg", "uat"),
}


def placement_problem(env_type: str, clusters: list[tuple[str, str]]) -> str | None:
    """Why an Environment of `env_type` may not run on the (name, env type) host clusters."""
    allowed = CLUSTER_TYPES_FOR.get(env_type, ())
    wrong = [name for name, cluster_type in clusters if cluster_type not in allowed]
    if not wrong:
        return None
    return (
        f"A {env_type} Environment may run only on {'/'.join(allowed)} host clusters, "
        f"not on {', '.join(wrong)}."
    )
