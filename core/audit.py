"""The audit trail: one event per state change, written inside the change's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from . import context, events
from .models import AuditEvent


def snapshot(obj: models.Model, fields: list[str]) -> dict[str, Any]:
    """The JSON-safe values of `fields` on `obj`, for an event's before/after."""
    data: dict[str, Any] = {}
    for name in fields:
        value = getattr(obj, name)
        if isinstance(value, models.Model):
            value = str(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        data[name] = value
    return data


@dataclass(frozen=True)
class Ref:
    """A target that is not a row: a sign-in name that may not exist, an address."""

    type: str
    id: str
    repr: str


def _target(target: models.Model | Ref) -> Ref:
    if isinstance(target, Ref):
        return target
    concrete = target._meta.concrete_model or type(target)  # a proxy is its concrete model
    return Ref(concrete._meta.label_lower, str(target.pk), str(target)[:254])


def _labels(target: models.Model | Ref) -> dict[str, str]:
    """The target's scope labels below its Organization (models taking part in RBAC declare
    `rbac_labels()`); the Organization is the event's `org_slug`."""
    rbac_labels = getattr(target, "rbac_labels", None)
    if rbac_labels is None:
        return {}
    return {k: v for k, v in rbac_labels().items() if k in AuditEvent.RBAC_LOOKUPS and v}


def record(
    action: str,
    *,
    actor: Any,
    target: models.Model | Ref,
    org_slug: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_repr: str = "",
) -> AuditEvent:
    """One audit event. `actor_repr` names an actor who is not a portal user (someone who pushed
    to Git); otherwise it is the user's e-mail or username, or "system"."""
    meta = context.current()
    ref = _target(target)
    labels = _labels(target)
    user = actor if getattr(actor, "is_authenticated", False) else None
    event = AuditEvent.objects.create(
        actor=user,
        actor_repr=actor_repr[:254]
        or ((getattr(user, "email", "") or getattr(user, "username", "")) if user else "system"),
        action=action,
        target_type=ref.type,
        target_id=ref.id[:64],
        target_repr=ref.repr[:254],
        org_slug=org_slug,
        labels=labels,
        before=before,
        after=after,
        request_id=meta.request_id,
        ip=meta.ip,
    )
    events.emit(
        f"audit.{action}",
        {
            "audit_event": event.pk,
            "actor": event.actor_repr,
            "target": {"type": event.target_type, "id": event.target_id, "repr": event.target_repr},
            "org": org_slug,
            "before": before,
            "after": after,
            "request_id": meta.request_id,
        },
    )
    return event
