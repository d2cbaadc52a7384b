"""UserAccess CRs: the cluster enforces the same grants the portal does."""

from __future__ import annotations

from typing import Any

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
            "labels": {"openova.io/managed-by": "flux", "app.kubernetes.io/managed-by": "flux"},
        },
        "spec": spec,
    }
