"""Store what the watcher sees, idempotently.

Every write compares resourceVersions: an event whose object is not newer than the stored row is
ignored, so replays after a reconnect and two watchers on one cluster do no harm. Deletions keep
a tombstone with the deleting resourceVersion.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import FluxEvent, FluxObject, rv_int

log = logging.getLogger(__name__)

Handler = Callable[[FluxObject], None]
_handlers: list[Handler] = []


def register_handler(handler: Handler) -> Handler:
    """Call `handler(flux_object)` after each stored change (after commit). Usable as decorator."""
    if handler not in _handlers:
        _handlers.append(handler)
    return handler


def unregister_handler(handler: Handler) -> None:
    if handler in _handlers:
        _handlers.remove(handler)


def _notify(obj: FluxObject) -> None:
    for handler in list(_handlers):
        try:
            handler(obj)
        except Exception:
            log.exception("Flux status handler %r failed for %s", handler, obj)


@dataclass(frozen=True)
class Observed:
    """The fields the portal keeps of one Flux object, parsed from its JSON."""

    namespace: str
    name: str
    fields: dict[str, Any]
    resource_version: int

    @classmethod
    def parse(cls, kind: str, raw: dict[str, Any]) -> Observed:
        meta = raw.get("metadata") or {}
        status = raw.get("status") or {}
        conditions = [
            {k: c.get(k, "") for k in ("type", "status", "reason", "message")}
            for c in status.get("conditions") or []
            if isinstance(c, dict)
        ]
        ready = next((c for c in conditions if c["type"] == "Ready"), None) or {}
        fields = {
            "uid": meta.get("uid", ""),
            "labels": meta.get("labels") or {},
            "generation": int(meta.get("generation") or 0),
            "observed_generation": int(status.get("observedGeneration") or 0),
            "conditions": conditions,
            "ready_status": ready.get("status", ""),
            "ready_reason": (ready.get("reason") or "")[:128],
            "ready_message": ready.get("message") or "",
            "applied_revision": status.get("lastAppliedRevision") or "",
            "attempted_revision": status.get("lastAttemptedRevision") or "",
            "artifact_revision": (status.get("artifact") or {}).get("revision") or "",
        }
        if kind == "HelmRelease":
            fields["applied_revision"] = ""
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            fields=fields,
            resource_version=rv_int(meta.get("resourceVersion")) or 0,
        )


def _timeline(obj: FluxObject, old: list[dict[str, str]], new: list[dict[str, str]]) -> None:
    before = {c["type"]: c for c in old}
    rows = []
    for cond in new:
        prev = before.get(cond["type"])
        if prev is None or any(prev[k] != cond[k] for k in ("status", "reason", "message")):
            rows.append(
                FluxEvent(
                    obj=obj,
                    event="condition",
                    type=cond["type"],
                    status=cond["status"],
                    reason=cond["reason"][:128],
                    message=cond["message"],
                    revision=obj.attempted_revision or obj.revision,
                    resource_version=obj.resource_version,
                )
            )
    FluxEvent.objects.bulk_create(rows)


def _apply_once(cluster: str, kind: str, event: str, seen: Observed) -> FluxObject | None:
    with transaction.atomic():
        obj = (
            FluxObject.objects.select_for_update()
            .filter(cluster=cluster, kind=kind, namespace=seen.namespace, name=seen.name)
            .first()
        )
        if obj is not None and seen.resource_version <= obj.resource_version:
            return None  # a replay, or another watcher got here first
        if event == "DELETED":
            if obj is None or obj.deleted_at is not None:
                return None
            obj.deleted_at = timezone.now()
            obj.resource_version = seen.resource_version
            obj.save(update_fields=["deleted_at", "resource_version", "updated_at"])
            FluxEvent.objects.create(
                obj=obj, event="deleted", resource_version=obj.resource_version
            )
            return obj
        old_conditions: list[dict[str, str]] = []
        created = obj is None or obj.deleted_at is not None
        if obj is None:
            obj = FluxObject(cluster=cluster, kind=kind, namespace=seen.namespace, name=seen.name)
        else:
            old_conditions = [] if created else obj.conditions
        for name, value in seen.fields.items():
            setattr(obj, name, value)
        obj.resource_version = seen.resource_version
        obj.deleted_at = None
        obj.save()
        if created:
            FluxEvent.objects.create(
                obj=obj, event="created", resource_version=obj.resource_version
            )
        _timeline(obj, old_conditions, obj.conditions)
        return obj


def apply(cluster: str, kind: str, event: str, raw: dict[str, Any]) -> FluxObject | None:
    """Store one watch event (ADDED, MODIFIED, DELETED). None when it changed nothing."""
    seen = Observed.parse(kind, raw)
    try:
        obj = _apply_once(cluster, kind, event, seen)
    except IntegrityError:  # another watcher created the row between our read and insert
        obj = _apply_once(cluster, kind, event, seen)
    if obj is not None:
        _notify(obj)
    return obj


def reconcile_list(
    cluster: str, kind: str, items: Iterable[dict[str, Any]], list_rv: int
) -> list[FluxObject]:
    """Store a full list; objects missing from it (deleted while we were away) become tombstones."""
    changed: list[FluxObject] = []
    present: set[tuple[str, str]] = set()
    for raw in items:
        seen = Observed.parse(kind, raw)
        present.add((seen.namespace, seen.name))
        obj = apply(cluster, kind, "ADDED", raw)
        if obj is not None:
            changed.append(obj)
    gone = FluxObject.objects.live().filter(
        cluster=cluster, kind=kind, resource_version__lt=list_rv
    )
    for namespace, name in gone.values_list("namespace", "name"):
        if (namespace, name) in present:
            continue
        tombstone = {
            "metadata": {"namespace": namespace, "name": name, "resourceVersion": str(list_rv)}
        }
        obj = apply(cluster, kind, "DELETED", tombstone)
        if obj is not None:
            changed.append(obj)
    return changed


def last_resource_version(cluster: str, kind: str) -> int | None:
    """Where a restarted watcher may resume: every event up to the newest stored object's
    resourceVersion has been processed (events of one kind arrive in order)."""
    from django.db.models import Max

    newest = FluxObject.objects.filter(cluster=cluster, kind=kind).aggregate(
        rv=Max("resource_version")
    )["rv"]
    return int(newest) if newest else None
