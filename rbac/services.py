"""Writes to grants. Each change is audited; grants in an Organization are delivered with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from core import audit, outbox
from core.actors import Actor, person
from core.errors import ConflictError
from gitops import naming

from . import access, manifests, tiers
from .models import GLOBAL, UserAccess

ORG_LABEL = naming.ORGANIZATION_LABEL
ENV_LABEL = naming.ENVIRONMENT_LABEL
ENV_TYPES = ("prod", "stg", "uat", "dev", "poc")  # SPEC §4; an Environment is `{org}-{env_type}`
SCOPE_KEYS = naming.LABEL_KEYS
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
        if key in terms and terms[key] != value:  # terms contradicting each other: 409
            raise ConflictError(
                {f"scope[{index}].key": f"{key} is given twice with different values."}
            )
        terms[key] = value
    _derive_organization(terms)
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


def _derive_organization(terms: dict[str, str]) -> None:
    """An Environment-scoped grant is bound to that Environment's Organization too, so it never
    reads as "every Organization" (Environment names are `{org}-{env_type}`, SPEC §4)."""
    env = terms.get(ENV_LABEL, GLOBAL)
    if env == GLOBAL:
        return
    org, _, env_type = env.rpartition("-")
    if not org or env_type not in ENV_TYPES:
        raise ValidationError(
            {"scope": f"{env!r} is not an Environment name ({{org}}-{{env_type}})."}
        )
    if terms.get(ORG_LABEL, org) not in (org, GLOBAL):  # terms contradicting each other: 409
        raise ConflictError({"scope": f"Environment {env} does not belong to {terms[ORG_LABEL]}."})
    terms[ORG_LABEL] = org


def _snapshot(grant: UserAccess) -> dict[str, Any]:
    return {
        "tier": grant.tier,
        "scopes": grant.scopes,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
    }


def assign(
    *,
    by: Actor,
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
            if scope_key(g.scopes) == scope_key(scopes)
        ]
        existing = same_scope[0] if same_scope else None
        if existing and existing.tier == tier and existing.expires_at == expires_at:
            return AssignResult(existing, "no-op")
        if existing:
            if existing.tier != tier:
                _run_guards(existing, tier)
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
                created_by=person(by),
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


def scope_key(scopes: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((s["key"], s["value"]) for s in scopes))


_deliverers: list[Any] = []


def on_grants_changed(callback: Any) -> Any:
    """Register who delivers grants for an org slug ("" = global); orgs registers itself."""
    _deliverers.append(callback)
    return callback


def _deliver(org_slug: str, *, by: Actor, event: Any) -> None:
    for callback in _deliverers:
        callback(org_slug=org_slug, by=by, event=event)


_guards: list[Any] = []
_directory: list[Any] = []


def guard_grant_change(callback: Any) -> Any:
    """Register a check run before a grant is demoted or removed: `callback(grant=, new_tier=)`
    raises (ConflictError) to refuse it; orgs uses it so the last owner stays."""
    _guards.append(callback)
    return callback


def organization_directory(callback: Any) -> Any:
    """Register who knows Organizations: `callback()` returns an object with `kind(slug)`
    ("internal" | "customer" | None) and `management_slug()` (the management Org or None)."""
    _directory.append(callback)
    return callback


def _run_guards(grant: UserAccess, new_tier: str | None) -> None:
    for callback in _guards:
        callback(grant=grant, new_tier=new_tier)


def covers(grant_scopes: tuple[tuple[str, str], ...], scopes: list[dict[str, str]]) -> bool:
    """Whether a grant in `grant_scopes` reaches everything `scopes` names (it is as wide or wider)."""
    wanted = {s["key"]: s["value"] for s in scopes}
    return all(
        key == GLOBAL or value == GLOBAL or wanted.get(key) == value for key, value in grant_scopes
    )


def level_in(by: Actor, scopes: list[dict[str, str]]) -> int:
    """The highest tier level `by` holds over the whole of `scopes` (0 when none)."""
    levels = [g.tier.level for g in access.grants_for(by) if covers(g.scopes, scopes)]
    return max(levels, default=0)


ADMIN_LEVEL = 40


def authorize_grant_change(
    *, by: Actor, scopes: list[dict[str, str]], tier: str | None, current_tier: str | None = None
) -> None:
    """Refuse (PermissionDenied, with the reason) unless `by` may give `tier` in `scopes` and
    replace `current_tier` there: admin or higher in that scope, up to their own tier; only owners
    touch owner grants."""
    needed = max(
        ADMIN_LEVEL,
        tiers.get(tier).level if tier else 0,
        tiers.get(current_tier).level if current_tier else 0,
    )
    have = level_in(by, scopes)
    if have >= needed:
        return
    if have < ADMIN_LEVEL:
        raise PermissionDenied("Granting access here needs the admin tier or higher in that scope.")
    raise PermissionDenied("You can grant up to your own tier; only owners grant or change owner.")


def _check_internal_to_customer(*, by: Actor, user: Any, org_slug: str) -> None:
    """A member of an internal Organization gets access to a customer Organization only from an
    owner of the management Organization (SPEC §6)."""
    if user is None or not org_slug or not _directory:
        return
    directory = _directory[0]()
    if directory.kind(org_slug) != "customer":
        return
    member_of = UserAccess.objects.live().filter(user=user).exclude(org_slug="")
    if not any(
        directory.kind(s) == "internal" for s in set(member_of.values_list("org_slug", flat=True))
    ):
        return
    management = directory.management_slug()
    scope = [{"key": ORG_LABEL, "value": management}] if management else GLOBAL_SCOPE
    if level_in(by, scope) < tiers.get("owner").level:
        raise PermissionDenied(
            "A member of an internal Organization can be given access to a customer Organization "
            "only by an owner of the management Organization."
        )


def grant_access(
    *,
    by: Actor,
    user: Any = None,
    group: str = "",
    tier: str,
    scopes: list[dict[str, str]],
    expires_at: datetime | None = None,
) -> AssignResult:
    """`assign` with the authorization rules applied (the API and the members pages use this)."""
    scopes = normalize_scopes(tier, scopes)
    existing = _find(user=user, group=group, scopes=scopes)
    authorize_grant_change(
        by=by, scopes=scopes, tier=tier, current_tier=existing.tier if existing else None
    )
    _check_internal_to_customer(by=by, user=user, org_slug=org_of(scopes))
    return assign(by=by, user=user, group=group, tier=tier, scopes=scopes, expires_at=expires_at)


def org_of(scopes: list[dict[str, str]]) -> str:
    return next((s["value"] for s in scopes if s["key"] == ORG_LABEL and s["value"] != GLOBAL), "")


def _find(*, user: Any, group: str, scopes: list[dict[str, str]]) -> UserAccess | None:
    subject = {"user": user, "group": ""} if user is not None else {"user": None, "group": group}
    key = scope_key(scopes)
    return next(
        (
            g
            for g in UserAccess.objects.filter(**subject, org_slug=org_of(scopes))
            if scope_key(g.scopes) == key
        ),
        None,
    )


def revoke(
    *, by: Actor, grant: UserAccess, authorize: bool = True, action: str = "rbac.revoke"
) -> None:
    """Remove a grant: audited, re-delivered (its UserAccess CR disappears from Git)."""
    if authorize:
        authorize_grant_change(by=by, scopes=grant.scopes, tier=None, current_tier=grant.tier)
    with transaction.atomic():
        locked = UserAccess.objects.select_for_update().filter(pk=grant.pk).first()
        if locked is None:
            return
        if locked.is_live:  # an expired grant no longer holds anything worth guarding
            _run_guards(locked, None)
        before = _snapshot(locked)
        event = audit.record(
            action, actor=by, target=locked, org_slug=locked.org_slug, before=before
        )
        locked.delete()
        _deliver(grant.org_slug, by=by, event=event)
    if grant.user is not None:
        access.forget(grant.user)


GLOBAL_SYNC_TASK = "rbac.tasks.sync_global_grants_task"
GLOBAL_SYNC_KEY = "global"


@on_grants_changed
def _global_grants_changed(*, org_slug: str, by: Actor, event: Any) -> None:
    if not org_slug:
        outbox.enqueue(GLOBAL_SYNC_TASK, GLOBAL_SYNC_KEY, actor=by, audit_event=event)


def deliver_global_grants(*, item: Any) -> str | None:
    """Commit the UserAccess CRs of grants bound to no Organization under access/global/."""
    from gitops import delivery
    from gitops.sync import sync

    result = sync(
        manifests.global_tree(),
        author=delivery.author_for(item.actor),
        message=delivery.commit_message(item, "global access grants"),
    )
    UserAccess.objects.filter(org_slug="").update(
        delivery_state="delivered", delivery_error="", last_commit_sha=result.head or ""
    )
    return result.head


def expire_grants() -> int:
    """Remove grants past their expiry (they already stopped working) so Git drops their CRs."""
    expired = UserAccess.objects.filter(expires_at__lte=timezone.now()).select_related("user")
    count = 0
    for grant in expired:
        revoke(by=None, grant=grant, authorize=False, action="rbac.expire")
        count += 1
    return count
