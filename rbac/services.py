"""Writes to grants. Each change is audited; grants in an Organization are delivered with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import transaction

from core import audit

from . import access, tiers
from .models import GLOBAL, UserAccess

ORG_LABEL = "openova.io/organization"
SCOPE_KEYS = (
    "openova.io/provider",
    "openova.io/region",
    "openova.io/building-block",
    "openova.io/env-type",
    "openova.io/sovereign",
    "openova.io/host-cluster",
    "openova.io/organization",
    "openova.io/environment",
    "openova.io/vcluster",
    "openova.io/application",
    "openova.io/blueprint",
    "openova.io/blueprint-version",
)
GLOBAL_SCOPE = [{"key": GLOBAL, "value": GLOBAL}]

Outcome = Literal["created", "updated", "no-op"]


@dataclass(frozen=True)
class AssignResult:
    grant: UserAccess
    outcome: Outcome


def normalize_scopes(tier: str, scopes: list[dict[str, str]]) -> list[dict[str, str]]:
    """Validate scope terms, apply the tier's forced scope (developer → env-type=dev), sort."""
    tiers.get(tier)
    terms: dict[str, str] = {}
    for index, term in enumerate(scopes):
        key, value = str(term.get("key", "")).strip(), str(term.get("value", "")).strip()
        if key == GLOBAL:
            if value != GLOBAL:
                raise ValidationError(
                    {f"scope[{index}].value": "A global scope is written {*: *}."}
                )
            terms[GLOBAL] = GLOBAL
            continue
        if key not in SCOPE_KEYS:
            raise ValidationError(
                {
                    f"scope[{index}].key": f"Unknown label {key!r}; use one of {', '.join(SCOPE_KEYS)} or *."
                }
            )
        if not value:
            raise ValidationError({f"scope[{index}].value": "Enter a value (or * for any)."})
        if key in terms and terms[key] != value:
            raise ValidationError(
                {f"scope[{index}].key": f"{key} is given twice with different values."}
            )
        terms[key] = value
    for key, value in tiers.get(tier).forced_scope:
        terms.pop(GLOBAL, None)
        terms[key] = value
    if not terms:
        raise ValidationError(
            {"scope": "A grant needs at least one scope term (or {*: *} for global)."}
        )
    if GLOBAL in terms and len(terms) > 1:
        del terms[GLOBAL]
    return [{"key": k, "value": v} for k, v in sorted(terms.items())]


def _snapshot(grant: UserAccess) -> dict[str, Any]:
    return {
        "tier": grant.tier,
        "scopes": grant.scopes,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
    }


def assign(
    *,
    by: Any,
    user: Any = None,
    group: str = "",
    tier: str,
    scopes: list[dict[str, str]],
    expires_at: datetime | None = None,
    deliver: bool = True,
) -> AssignResult:
    """Find-or-create the grant of `tier` for a subject in exactly these scopes (authorization is
    the caller's). Same tier → no-op, other tier → updated, none → created."""
    scopes = normalize_scopes(tier, scopes)
    org_slug = next(
        (s["value"] for s in scopes if s["key"] == ORG_LABEL and s["value"] != GLOBAL), ""
    )
    with transaction.atomic():
        subject = (
            {"user": user, "group": ""} if user is not None else {"user": None, "group": group}
        )
        same_scope = [
            g
            for g in UserAccess.objects.select_for_update().filter(**subject, org_slug=org_slug)
            if _scope_key(g.scopes) == _scope_key(scopes)
        ]
        existing = same_scope[0] if same_scope else None
        if existing and existing.tier == tier and existing.expires_at == expires_at:
            return AssignResult(existing, "no-op")
        if existing:
            before = _snapshot(existing)
            existing.tier, existing.expires_at = tier, expires_at
            existing.save(update_fields=["tier", "expires_at", "updated_at"])
            event = audit.record(
                "rbac.assign",
                actor=by,
                target=existing,
                org_slug=org_slug,
                before=before,
                after=_snapshot(existing),
            )
            result = AssignResult(existing, "updated")
        else:
            grant = UserAccess.objects.create(
                **subject,
                tier=tier,
                scopes=scopes,
                org_slug=org_slug,
                expires_at=expires_at,
                created_by=by if getattr(by, "is_authenticated", False) else None,
            )
            event = audit.record(
                "rbac.assign", actor=by, target=grant, org_slug=org_slug, after=_snapshot(grant)
            )
            result = AssignResult(grant, "created")
        if deliver:
            _deliver(org_slug, by=by, event=event)
    if user is not None:
        access.forget(user)
    return result


def _scope_key(scopes: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((s["key"], s["value"]) for s in scopes))


_deliverers: list[Any] = []


def on_grants_changed(callback: Any) -> Any:
    """Register who delivers grants for an org slug ("" = global); orgs registers itself."""
    _deliverers.append(callback)
    return callback


def _deliver(org_slug: str, *, by: Any, event: Any) -> None:
    for callback in _deliverers:
        callback(org_slug=org_slug, by=by, event=event)
