"""Render an Organization's desired files in system/catalyst-config (SPEC §4–5).

Everything an Organization owns in that repo lives under `organizations/<slug>/`, so one
level-triggered sync delivers the Organization, its Environments and its access grants together.
"""

from __future__ import annotations

from typing import Any

import yaml

from gitops import naming
from gitops.sync import Desired
from rbac.manifests import user_access_manifest
from rbac.models import UserAccess

from .models import Environment, Organization, OrgState, Sovereign


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def lifecycle(org: Organization) -> str:
    return {OrgState.SUSPENDED: "suspended", OrgState.ARCHIVED: "archived"}.get(org.state, "active")  # type: ignore[call-overload]


def organization_manifest(org: Organization, sovereign: Sovereign) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "displayName": org.display_name,
        "kind": org.kind,
        "tier": org.tier,
        "billingMode": org.billing_mode,
        "defaultEnvType": org.default_env_type,
        "lifecycle": lifecycle(org),
        "keycloakTopology": "shared-sovereign"
        if org.tier == "corporate"
        else sovereign.keycloak_topology,
        "gitOrganization": org.slug,
    }
    if org.plan_code:
        spec["plan"] = org.plan_code
    if org.parent_id:
        spec["parent"] = org.parent.slug  # type: ignore[union-attr]
    return {
        "apiVersion": "orgs.openova.io/v1",
        "kind": "Organization",
        "metadata": {
            "name": org.slug,
            "labels": naming.labels(sovereign=sovereign.fqdn, organization=org.slug),
        },
        "spec": spec,
    }


def environment_manifest(
    env: Environment, org: Organization, sovereign: Sovereign
) -> dict[str, Any]:
    regions = sorted(env.regions.all(), key=lambda c: c.name)
    return {
        "apiVersion": "catalyst.openova.io/v1",
        "kind": "Environment",
        "metadata": {
            "name": env.name,
            "labels": naming.labels(
                sovereign=sovereign.fqdn,
                organization=org.slug,
                environment=env.name,
                env_type=env.env_type,
            ),
        },
        "spec": {
            "organization": org.slug,
            "envType": env.env_type,
            "placement": env.placement,
            "branch": naming.branch_for(env.env_type),
            "regions": [
                {
                    "hostCluster": c.name,
                    "provider": c.provider,
                    "region": c.region,
                    "buildingBlock": c.building_block,
                }
                for c in regions
            ],
            **({"policy": env.policy} if env.policy else {}),
        },
    }


def organization_root(slug: str) -> str:
    return f"organizations/{slug}/"


def organization_tree(org: Organization) -> Desired:
    """The complete desired files of one Organization (empty once it is archived and purged)."""
    sovereign = Sovereign.current()
    owner, repo, branch = naming.config_repo()
    root = organization_root(org.slug)
    files = {f"{root}organization.yaml": dump(organization_manifest(org, sovereign))}
    for env in org.environments.prefetch_related("regions"):
        files[f"{root}environments/{env.name}.yaml"] = dump(
            environment_manifest(env, org, sovereign)
        )
    for grant in UserAccess.objects.in_org(org.slug).live().select_related("user"):
        files[f"{root}access/{grant.pk}.yaml"] = dump(user_access_manifest(grant))
    return Desired(owner=owner, repo=repo, branch=branch, root=root, files=files)
