"""Store what the watcher sees, idempotently.

Every write compares resourceVersions: an event whose object is not newer than the stored row is
ignored, so replays after a reconnect and two watchers on one cluster do no harm. Deletions keep
a tombstone with the deleting resourceVersion. A write given a `fence` (gitops/leader.py: the
elected watcher's lease token) checks it in its own transaction and is refused (`Deposed`) once
another watcher has taken the lease over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from .leader import Fence
from .models import FluxEvent, FluxObject, ObjectEvent, rv_int

log = logging.getLogger(__name__)

Handler = Callable[[list[FluxObject]], None]
_handlers: list[Handler] = []


def register_handler(handler: Handler) -> Handler:
    """Call `handler(objects)` after stored changes (after commit): a watch event passes one
    object, a relist every changed object at once, so a handler can find what they affect in one
    query. Usable as decorator."""
    if handler not in _handlers:
        _handlers.append(handler)
    return handler


def unregister_handler(handler: Handler) -> None:
    if handler in _handlers:
        _handlers.remove(handler)


def _notify(obj: FluxObject) -> None:
    _notify_all([obj])


def _notify_all(objs: list[FluxObject]) -> None:
    if not objs:
        return
    for handler in list(_handlers):
        try:
            handler(objs)
        except Exception:
            log.exception("Flux status handler %r failed", handler)


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
        fields["details"] = details(kind, raw)
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            fields=fields,
            resource_version=rv_int(meta.get("resourceVersion")) or 0,
        )


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def details(kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    """What a HelmRelease (helm.toolkit.fluxcd.io/v2) reports beyond its conditions: the chart
    asked for, the chart version last attempted, the release history (newest first) and the
    remediation counters against the retries its spec allows."""
    if kind != "HelmRelease":
        return {}
    spec, status = raw.get("spec") or {}, raw.get("status") or {}
    chart = (spec.get("chart") or {}).get("spec") or {}
    history = [
        {
            k: h.get(k)
            for k in (
                "version",
                "status",
                "chartName",
                "chartVersion",
                "appVersion",
                "lastDeployed",
            )
        }
        for h in (status.get("history") or [])[:5]
        if isinstance(h, dict)
    ]
    return {
        "chart": chart.get("chart", ""),
        "chartVersion": chart.get("version", ""),
        "lastAttemptedRevision": status.get("lastAttemptedRevision") or "",
        "lastAttemptedReleaseAction": status.get("lastAttemptedReleaseAction") or "",
        "installFailures": _count(status.get("installFailures")),
        "upgradeFailures": _count(status.get("upgradeFailures")),
        "failures": _count(status.get("failures")),
        "installRetries": _count(
            ((spec.get("install") or {}).get("remediation") or {}).get("retries")
        ),
        "upgradeRetries": _count(
            ((spec.get("upgrade") or {}).get("remediation") or {}).get("retries")
        ),
        "history": history,
    }


def _timeline(
    obj: FluxObject, old: list[dict[str, str]], new: list[dict[str, str]], at: Any = None
) -> list[FluxEvent]:
    at = at or timezone.now()
    before = {c["type"]: c for c in old}
    rows = []
    for cond in new:
        prev = before.get(cond["type"])
        if prev is None or any(prev[k] != cond[k] for k in ("status", "reason", "message")):
            rows.append(
                FluxEvent(
                    obj=obj,
                    at=at,
                    event="condition",
                    type=cond["type"],
                    status=cond["status"],
                    reason=cond["reason"][:128],
                    message=cond["message"],
                    revision=obj.attempted_revision or obj.revision,
                    resource_version=obj.resource_version,
                )
            )
    return rows


def _apply_once(
    cluster: str, kind: str, event: str, seen: Observed, fence: Fence | None
) -> FluxObject | None:
    with transaction.atomic():
        if fence is not None:
            fence.check()
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
        FluxEvent.objects.bulk_create(_timeline(obj, old_conditions, obj.conditions))
        return obj


def apply(
    cluster: str, kind: str, event: str, raw: dict[str, Any], *, fence: Fence | None = None
) -> FluxObject | None:
    """Store one watch event (ADDED, MODIFIED, DELETED). None when it changed nothing."""
    seen = Observed.parse(kind, raw)
    try:
        obj = _apply_once(cluster, kind, event, seen, fence)
    except IntegrityError:  # another watcher created the row between our read and insert
        obj = _apply_once(cluster, kind, event, seen, fence)
    if obj is not None:
        _notify(obj)
    return obj


def reconcile_list(
    cluster: str,
    kind: str,
    items: Iterable[dict[str, Any]],
    list_rv: int,
    *,
    fence: Fence | None = None,
) -> list[FluxObject]:
    """Store a full list; objects missing from it (deleted while we were away) become tombstones.

    One transaction with bulk writes; if another watcher inserts concurrently, fall back to
    storing object by object (each write still compares resourceVersions)."""
    seen = {}
    for raw in items:
        observed = Observed.parse(kind, raw)
        seen[(observed.namespace, observed.name)] = observed
    try:
        changed = _reconcile_batch(cluster, kind, seen, list_rv, fence)
    except IntegrityError:
        changed = _reconcile_one_by_one(cluster, kind, seen, list_rv, fence)
    else:
        _notify_all(changed)
    return changed


_FIELDS = [
    "uid",
    "labels",
    "generation",
    "observed_generation",
    "conditions",
    "ready_status",
    "ready_reason",
    "ready_message",
    "applied_revision",
    "attempted_revision",
    "artifact_revision",
    "details",
    "resource_version",
    "deleted_at",
    "updated_at",
]


def _insert(model: type[models.Model], objs: list[Any], names: list[str]) -> None:
    """INSERT many rows with one executemany: bulk_create's per-value preparation dominates a
    relist of thousands of objects. JSON and datetime values are adapted by their fields."""
    if not objs:
        return
    meta = model._meta
    fields: list[Any] = [meta.get_field(name) for name in names]
    adapt = [isinstance(f, models.JSONField | models.DateTimeField) for f in fields]
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - quoted model identifiers
        quote(meta.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
    )
    params = [
        [
            f.get_db_prep_save(getattr(obj, f.attname), connection)
            if a
            else getattr(obj, f.attname)
            for f, a in zip(fields, adapt, strict=True)
        ]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


_NEW_FIELDS = ["cluster", "kind", "namespace", "name", "created_at", *_FIELDS]
_EVENT_FIELDS = [
    "obj",
    "at",
    "event",
    "type",
    "status",
    "reason",
    "message",
    "revision",
    "resource_version",
]


def _reconcile_batch(
    cluster: str,
    kind: str,
    seen: dict[tuple[str, str], Observed],
    list_rv: int,
    fence: Fence | None,
) -> list[FluxObject]:
    now = timezone.now()
    with transaction.atomic():
        if fence is not None:
            fence.check()
        rows = FluxObject.objects.select_for_update().filter(cluster=cluster, kind=kind)
        known = {
            (ns, name): (pk, rv, deleted)
            for ns, name, pk, rv, deleted in rows.values_list(
                "namespace", "name", "pk", "resource_version", "deleted_at"
            )
        }
        newer = [k for k, o in seen.items() if k not in known or o.resource_version > known[k][1]]
        gone_keys = [
            k
            for k, (_, rv, deleted) in known.items()
            if k not in seen and deleted is None and rv < list_rv
        ]
        changed_pks = [known[k][0] for k in newer if k in known] + [known[k][0] for k in gone_keys]
        full: dict[tuple[str, str], FluxObject] = {}
        for i in range(0, len(changed_pks), 900):
            for row in FluxObject.objects.filter(pk__in=changed_pks[i : i + 900]):
                full[(row.namespace, row.name)] = row
        new: list[FluxObject] = []
        updated: list[FluxObject] = []
        timeline: list[tuple[FluxObject, list[dict[str, str]]]] = []
        for key in newer:
            observed, found = seen[key], full.get(key)
            created = found is None or found.deleted_at is not None
            if found is None:
                obj = FluxObject(
                    cluster=cluster,
                    kind=kind,
                    namespace=key[0],
                    name=key[1],
                    created_at=now,
                    updated_at=now,
                )
                new.append(obj)
            else:
                obj = found
                updated.append(obj)
            timeline.append((obj, [] if created else obj.conditions))
            for name, value in observed.fields.items():
                setattr(obj, name, value)
            obj.resource_version, obj.deleted_at, obj.updated_at = (
                observed.resource_version,
                None,
                now,
            )
        gone = [full[k] for k in gone_keys]
        for obj in gone:
            obj.deleted_at, obj.resource_version, obj.updated_at = now, list_rv, now
        _insert(FluxObject, new, _NEW_FIELDS)
        if new:
            pks = dict(
                ((ns, name), pk)
                for ns, name, pk in FluxObject.objects.filter(
                    cluster=cluster, kind=kind
                ).values_list("namespace", "name", "pk")
            )
            for obj in new:
                obj.pk = pks[(obj.namespace, obj.name)]
                obj._state.adding = False
        FluxObject.objects.bulk_update(updated + gone, _FIELDS, batch_size=500)
        events: list[FluxEvent] = []
        for obj, old in timeline:
            events += _timeline(obj, old, obj.conditions, now)
        events += [
            FluxEvent(obj=o, event="deleted", resource_version=list_rv, at=now) for o in gone
        ]
        _insert(FluxEvent, events, _EVENT_FIELDS)
    return new + updated + gone


def _reconcile_one_by_one(
    cluster: str,
    kind: str,
    seen: dict[tuple[str, str], Observed],
    list_rv: int,
    fence: Fence | None,
) -> list[FluxObject]:
    changed = []
    for observed in seen.values():
        obj = apply(cluster, kind, "ADDED", _raw(observed), fence=fence)
        if obj is not None:
            changed.append(obj)
    gone = FluxObject.objects.live().filter(
        cluster=cluster, kind=kind, resource_version__lt=list_rv
    )
    for namespace, name in gone.values_list("namespace", "name"):
        if (namespace, name) in seen:
            continue
        meta = {"namespace": namespace, "name": name, "resourceVersion": str(list_rv)}
        obj = apply(cluster, kind, "DELETED", {"metadata": meta}, fence=fence)
        if obj is not None:
            changed.append(obj)
    return changed


def _raw(observed: Observed) -> dict[str, Any]:
    """Back from parsed fields to the JSON shape `apply` reads (fallback path only)."""
    f = observed.fields
    return {
        "metadata": {
            "namespace": observed.namespace,
            "name": observed.name,
            "uid": f["uid"],
            "labels": f["labels"],
            "generation": f["generation"],
            "resourceVersion": str(observed.resource_version),
        },
        "spec": {
            "chart": {
                "spec": {
                    "chart": f["details"].get("chart"),
                    "version": f["details"].get("chartVersion"),
                }
            },
            "install": {"remediation": {"retries": f["details"].get("installRetries")}},
            "upgrade": {"remediation": {"retries": f["details"].get("upgradeRetries")}},
        },
        "status": {
            "observedGeneration": f["observed_generation"],
            "conditions": f["conditions"],
            "lastAppliedRevision": f["applied_revision"],
            "lastAttemptedRevision": f["attempted_revision"]
            or f["details"].get("lastAttemptedRevision"),
            "lastAttemptedReleaseAction": f["details"].get("lastAttemptedReleaseAction"),
            "installFailures": f["details"].get("installFailures"),
            "upgradeFailures": f["details"].get("upgradeFailures"),
            "failures": f["details"].get("failures"),
            "history": f["details"].get("history") or [],
            "artifact": {"revision": f["artifact_revision"]},
        },
    }


def last_resource_version(cluster: str, kind: str) -> int | None:
    """Where a restarted watcher may resume: every event up to the newest stored object's
    resourceVersion has been processed (events of one kind arrive in order)."""
    from django.db.models import Max

    newest = FluxObject.objects.filter(cluster=cluster, kind=kind).aggregate(
        rv=Max("resource_version")
    )["rv"]
    return int(newest) if newest else None


# --- Kubernetes Events recorded for Flux objects -------------------------------------------------


def _event_time(raw: dict[str, Any], *names: str) -> Any:
    from django.utils.dateparse import parse_datetime

    for name in names:
        value = raw.get(name)
        if isinstance(value, str) and (parsed := parse_datetime(value)) is not None:
            return parsed
    return timezone.now()


def _event_row(cluster: str, raw: dict[str, Any]) -> ObjectEvent | None:
    meta, involved = raw.get("metadata") or {}, raw.get("involvedObject") or {}
    if not meta.get("uid") or not involved.get("kind") or not involved.get("name"):
        return None
    annotations = meta.get("annotations") or {}
    source = raw.get("source") or {}
    return ObjectEvent(
        cluster=cluster,
        uid=meta["uid"],
        kind=involved["kind"],
        namespace=involved.get("namespace") or meta.get("namespace") or "",
        name=involved["name"],
        type=(raw.get("type") or "")[:16],
        reason=(raw.get("reason") or "")[:128],
        message=raw.get("message") or raw.get("note") or "",
        count=max(_count(raw.get("count") or (raw.get("series") or {}).get("count")), 1),
        reporter=(raw.get("reportingComponent") or source.get("component") or "")[:128],
        revision=str(next((v for k, v in annotations.items() if k.endswith("/revision")), ""))[
            :255
        ],
        first_seen=_event_time(raw, "firstTimestamp", "eventTime", "lastTimestamp"),
        last_seen=_event_time(raw, "lastTimestamp", "eventTime", "firstTimestamp"),
        resource_version=rv_int(meta.get("resourceVersion")) or 0,
    )


EVENT_FIELDS = [
    "kind",
    "namespace",
    "name",
    "type",
    "reason",
    "message",
    "count",
    "reporter",
    "revision",
    "first_seen",
    "last_seen",
    "resource_version",
]


def record_events(
    cluster: str, items: Iterable[dict[str, Any]], *, fence: Fence | None = None
) -> list[FluxObject]:
    """Store Kubernetes Events (a watch event or a whole list), newest resourceVersion wins;
    keep FLUX_EVENTS_PER_OBJECT per object; the Flux objects they concern, for the handlers."""
    from django.conf import settings

    rows = [row for row in (_event_row(cluster, raw) for raw in items) if row is not None]
    if not rows:
        return []
    with transaction.atomic():
        if fence is not None:
            fence.check()
        known = dict(
            ObjectEvent.objects.filter(cluster=cluster, uid__in=[r.uid for r in rows]).values_list(
                "uid", "resource_version"
            )
        )
        fresh = [r for r in rows if r.uid not in known]
        newer = [r for r in rows if r.uid in known and r.resource_version > known[r.uid]]
        ObjectEvent.objects.bulk_create(fresh, ignore_conflicts=True)
        for row in newer:
            ObjectEvent.objects.filter(cluster=cluster, uid=row.uid).update(
                **{name: getattr(row, name) for name in EVENT_FIELDS}
            )
        touched = {(r.kind, r.namespace, r.name) for r in fresh + newer}
        for kind, namespace, name in touched:
            keep = ObjectEvent.objects.filter(
                cluster=cluster, kind=kind, namespace=namespace, name=name
            ).order_by("-last_seen", "-id")
            old = list(keep.values_list("pk", flat=True)[settings.FLUX_EVENTS_PER_OBJECT :])
            if old:
                ObjectEvent.objects.filter(pk__in=old).delete()
    if not touched:
        return []
    match = models.Q()
    for kind, namespace, name in touched:
        match |= models.Q(kind=kind, namespace=namespace, name=name)
    objs = list(FluxObject.objects.filter(match, cluster=cluster))
    _notify_all(objs)
    return objs


def last_event_resource_version(cluster: str, kind: str) -> int | None:
    from django.db.models import Max

    newest = ObjectEvent.objects.filter(cluster=cluster, kind=kind).aggregate(
        rv=Max("resource_version")
    )["rv"]
    return int(newest) if newest else None
