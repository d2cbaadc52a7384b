"""The one door for authorization.

Rules (SPEC §6): a grant matches a target when every scope term matches one of the target's
labels (AND within a grant); a user may act when any live grant matches and its tier includes the
action (OR across grants). `{*: *}` is global. A term whose label the target does not carry (an
Environment-scoped grant seen from its Organization) lets the user *read* the target, never act
on it: you may see the Organization you have an Environment in.

`can()` and `visible()` apply the same rules, the first in Python, the second as one SQL filter.
A user's grants are read once per request (cached on the user object).

`strict=True` reads as acting does: every term of the grant must match a label the target
carries. Organization-wide data (its audit trail, billing, members, the access matrix, grants)
is read strictly, so a grant scoped below the Organization (an Environment, an env type) sees the
Organization but not what belongs to all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from gitops import naming

from . import tiers
from .models import GLOBAL, UserAccess

ORG_LABEL = naming.ORGANIZATION_LABEL

M = TypeVar("M", bound=models.Model)
_CACHE_ATTR = "_rbac_grants"


class Scoped(Protocol):
    RBAC_LOOKUPS: dict[str, str]

    def rbac_labels(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Grant:
    tier: tiers.Tier
    scopes: tuple[tuple[str, str], ...]
    expires_at: datetime | None = None

    @property
    def is_global(self) -> bool:
        return any(key == GLOBAL for key, _ in self.scopes)

    def is_live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


def is_read(action: str) -> bool:
    return action.endswith(".read")


def _check_action(action: str) -> None:
    if action not in tiers.known_actions():
        raise ValueError(f"unknown action {action!r}: add it to rbac/tiers.yaml")


def grants_for(user: Any) -> list[Grant]:
    """The user's live grants: read from the database once per user object (once per request),
    re-checked for expiry on every call so an expired grant stops working at once."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    cached: list[Grant] | None = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        rows = UserAccess.objects.for_subject(user).values_list("tier", "scopes", "expires_at")
        cached = [
            Grant(tiers.get(tier), tuple((s["key"], s["value"]) for s in scopes), expires_at)
            for tier, scopes, expires_at in rows
        ]
        setattr(user, _CACHE_ATTR, cached)
    now = timezone.now()
    return [g for g in cached if g.is_live(now)]


def forget(user: Any) -> None:
    """Drop the per-request cache after the user's grants changed."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def scope_matches(
    scopes: tuple[tuple[str, str], ...], labels: dict[str, str], *, read: bool
) -> bool:
    for key, value in scopes:
        if key == GLOBAL:
            continue
        if key not in labels:
            if read:
                continue
            return False
        if value != GLOBAL and labels[key] != value:
            return False
    return True


def can(user: Any, action: str, target: Scoped | dict[str, str], *, strict: bool = False) -> bool:
    _check_action(action)
    labels = target if isinstance(target, dict) else target.rbac_labels()
    read = is_read(action) and not strict
    return any(
        action in g.tier.actions and scope_matches(g.scopes, labels, read=read)
        for g in grants_for(user)
    )


def is_global(user: Any, action: str) -> bool:
    """Whether the user may do `action` everywhere (Sovereign operators)."""
    _check_action(action)
    return any(g.is_global and action in g.tier.actions for g in grants_for(user))


OPERATOR_MIN_TIER = "admin"


def is_operator(user: Any, action: str = "audit.read") -> bool:
    """A Sovereign operator: admin or owner with a global scope whose tier includes `action`
    (SPEC §6: BSS and operator pages need admin tier with global scope)."""
    _check_action(action)
    floor = tiers.get(OPERATOR_MIN_TIER).level
    return any(
        g.is_global and g.tier.level >= floor and action in g.tier.actions for g in grants_for(user)
    )


def require_global(user: Any, action: str) -> None:
    """Guard for Sovereign-operator pages (BSS, global audit): 404 for everyone but operators.

    404, not 403: the operator console's pages are not advertised to tenants, the same rule as
    another Organization's objects (existence is not disclosed)."""
    if not is_operator(user, action):
        raise Http404


def scope_terms(
    model: type[models.Model], scopes: tuple[tuple[str, str], ...], *, read: bool
) -> dict[str, str] | None:
    """The ORM lookups one grant requires of `model`'s rows ({} = every row), or None when the
    grant cannot match it."""
    lookups: dict[str, str] = getattr(model, "RBAC_LOOKUPS")  # noqa: B009
    terms: dict[str, str] = {}
    for key, value in scopes:
        if key == GLOBAL:
            continue
        if key not in lookups:
            if read:
                continue
            return None
        if value != GLOBAL:
            terms[lookups[key]] = value
    return terms


def scope_q(
    model: type[models.Model], scopes: tuple[tuple[str, str], ...], *, read: bool
) -> Q | None:
    """The SQL condition for one grant on `model`, or None when the grant cannot match it."""
    terms = scope_terms(model, scopes, read=read)
    return None if terms is None else Q(**terms)


def visible(
    user: Any, qs: models.QuerySet[M], action: str, *, strict: bool = False
) -> models.QuerySet[M]:
    """`qs` narrowed to the rows `user` may `action`, in one SQL filter (`strict`: see above).

    Grants that differ only in their Organization are folded into one `IN (...)` term, so fifty
    Organization grants cost one indexed lookup, not fifty ORed joins."""
    _check_action(action)
    read = is_read(action) and not strict
    org_lookup = getattr(qs.model, "RBAC_LOOKUPS", {}).get(ORG_LABEL)
    groups: dict[tuple[tuple[str, str], ...], set[str]] = {}
    others: list[dict[str, str]] = []
    for grant in grants_for(user):
        if action not in grant.tier.actions:
            continue
        terms = scope_terms(qs.model, grant.scopes, read=read)
        if terms is None:
            continue
        if not terms:  # no condition: everything
            return qs
        if org_lookup and org_lookup in terms:
            org = terms.pop(org_lookup)
            groups.setdefault(tuple(sorted(terms.items())), set()).add(org)
        else:
            others.append(terms)
    conditions = [Q(**terms) for terms in others]
    for rest, orgs in groups.items():
        conditions.append(Q(**{f"{org_lookup}__in": sorted(orgs)}, **dict(rest)))
    if not conditions:
        return qs.none()
    condition = conditions[0]
    for q in conditions[1:]:
        condition |= q
    return qs.filter(condition)


def read_action(action: str) -> str:
    return action.split(".", 1)[0] + ".read"


def get_object_for(
    user: Any,
    model: type[M] | models.QuerySet[M],
    *,
    action: str,
    strict: bool = False,
    **lookup: Any,
) -> M:
    """The object, or 404 when the user may not read it (existence not disclosed), 403 when they may
    read it but not do `action` (`strict`: with a grant covering all of it)."""
    qs = model if isinstance(model, models.QuerySet) else model._default_manager.all()
    try:
        obj = qs.get(**lookup)
    except (ObjectDoesNotExist, ValueError):
        raise Http404 from None
    if not can(user, read_action(action), obj):  # type: ignore[arg-type]
        raise Http404
    if not can(user, action, obj, strict=strict):  # type: ignore[arg-type]
        raise PermissionDenied
    return obj
