"""UserAccess CRs: the cluster enforces the same grants the portal does."""

from __future__ import annotations

from typing import Any

import yaml

from gitops import naming

from .models import UserAccess


def subject(grant: UserAccess) -> dict[str, str]:
    if grant.user_id and grant.user:
        return {"kind": "User", "name": grant.user.email or grant.user.get_username()}
    return {"kind": "Group", "name": grant.group}


def user_access_manifest(grant: UserAccess) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "subject": subject(grant),
        "tier": grant.tier,
        "tierRoleRef": f"openova:tier-{grant.tier}",
        "scopes": [{"key": s["key"], "value": s["value"]} for s in grant.scopes],
    }
    if grant.expires_at:
        spec["expiresAt"] = grant.expires_at.isoformat()
    return {
        "apiVersion": "catalyst.openova.io/v1",
        "kind": "UserAccess",
        "metadata": {
            "name": f"grant-{grant.pk}",
            "labels": dict(naming.MANAGED_BY),
        },
        "spec": spec,
    }


GLOBAL_ROOT = "access/global/"


def global_tree() -> Any:
    """Desired files of the grants bound to no single Organization (Sovereign operators and
    grants across Organizations); org grants are delivered with their Organization."""
    from gitops.sync import Desired

    owner, repo, branch = naming.config_repo()
    files = {
        f"{GLOBAL_ROOT}{grant.pk}.yaml": yaml.safe_dump(
            user_access_manifest(grant), sort_keys=False, default_flow_style=False
        )
        for grant in UserAccess.objects.filter(org_slug="").live().select_related("user")
    }
    return Desired(owner=owner, repo=repo, branch=branch, root=GLOBAL_ROOT, files=files)
