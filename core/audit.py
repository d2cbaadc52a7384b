"""The audit trail: one event per state change, written inside the change's transaction."""

from __future__ import annotations

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


def record(
    action: str,
    *,
    actor: Any,
    target: models.Model,
    org_slug: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    meta = context.current()
    user = actor if getattr(actor, "is_authenticated", False) else None
    event = AuditEvent.objects.create(
        actor=user,
        actor_repr=(getattr(user, "email", "") or getattr(user, "username", ""))
        if user
        else "system",
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:254],
        org_slug=org_slug,
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
