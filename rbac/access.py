"""The one door for authorization.

Rules (SPEC §6): a grant matches a target when every scope term matches one of the target's
labels (AND within a grant); a user may act when any live grant matches and its tier includes the
action (OR across grants). `{*: *}` is global. A term whose label the target does not carry (an
Environment-scoped grant seen from its Organization) lets the user *read* the target, never act
on it: you may see the Organization you have an Environment in.

`can()` and `visible()` apply the same rules, the first in Python, the second as one SQL filter.
A user's grants are read once per request (cached on the user object).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import Q
from django.http import Http404

from . import tiers
from .models import GLOBAL, UserAccess

M = TypeVar("M", bound=models.Model)
_CACHE_ATTR = "_rbac_grants"


class Scoped(Protocol):
    RBAC_LOOKUPS: dict[str, str]

    def rbac_labels(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Grant:
    tier: tiers.Tier
    scopes: tuple[tuple[str, str], ...]

    @property
    def is_global(self) -> bool:
        return any(key == GLOBAL for key, _ in self.scopes)


def is_read(action: str) -> bool:
    return action.endswith(".read")


def _check_action(action: str) -> None:
    if action not in tiers.known_actions():
        raise ValueError(f"unknown action {action!r}: add it to rbac/tiers.yaml")


def grants_for(user: Any) -> list[Grant]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        rows = UserAccess.objects.for_subject(user).values_list("tier", "scopes")
        cached = [
            Grant(tiers.get(tier), tuple((s["key"], s["value"]) for s in scopes))
            for tier, scopes in rows
        ]
        setattr(user, _CACHE_ATTR, cached)
    return cached


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


def can(user: Any, action: str, target: Scoped | dict[str, str]) -> bool:
    _check_action(action)
    labels = target if isinstance(target, dict) else target.rbac_labels()
    read = is_read(action)
    return any(
        action in g.tier.actions and scope_matches(g.scopes, labels, read=read)
        for g in grants_for(user)
    )


def is_global(user: Any, action: str) -> bool:
    """Whether the user may do `action` everywhere (Sovereign operators)."""
    _check_action(action)
    return any(g.is_global and action in g.tier.actions for g in grants_for(user))


def scope_q(
    model: type[models.Model], scopes: tuple[tuple[str, str], ...], *, read: bool
) -> Q | None:
    """The SQL condition for one grant on `model`, or None when the grant cannot match it."""
    lookups: dict[str, str] = getattr(model, "RBAC_LOOKUPS")  # noqa: B009
    q = Q()
    for key, value in scopes:
        if key == GLOBAL:
            continue
        if key not in lookups:
            if read:
                continue
            return None
        if value != GLOBAL:
            q &= Q(**{lookups[key]: value})
    return q


def visible(user: Any, qs: models.QuerySet[M], action: str) -> models.QuerySet[M]:
    """`qs` narrowed to the rows `user` may `action`, in one SQL filter."""
    _check_action(action)
    read = is_read(action)
    condition: Q | None = None
    for grant in grants_for(user):
        if action not in grant.tier.actions:
            continue
        q = scope_q(qs.model, grant.scopes, read=read)
        if q is None:
            continue
        if not q:  # no condition: everything
            return qs
        condition = q if condition is None else condition | q
    return qs.filter(condition) if condition is not None else qs.none()


def read_action(action: str) -> str:
    return action.split(".", 1)[0] + ".read"


def get_object_for(
    user: Any, model: type[M] | models.QuerySet[M], *, action: str, **lookup: Any
) -> M:
    """The object, or 404 when the user may not read it (existence not disclosed), 403 when they may
    read it but not do `action`."""
    qs = model if isinstance(model, models.QuerySet) else model._default_manager.all()
    try:
        obj = qs.get(**lookup)
    except (ObjectDoesNotExist, ValueError):
        raise Http404 from None
    if not can(user, read_action(action), obj):  # type: ignore[arg-type]
        raise Http404
    if not can(user, action, obj):  # type: ignore[arg-type]
        raise PermissionDenied
    return obj
