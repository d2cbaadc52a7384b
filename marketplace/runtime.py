"""An Application's runtime, per region, as Flux reports it (read from the watch; no exec, no
logs): the HelmRelease's chart and version, the chart version it last attempted and the one
deployed, its conditions and remediation counts (install / upgrade failures against the retries
allowed), the Kustomization's last attempted and applied revisions, and the Kubernetes Events
the Flux controllers recorded for these objects, newest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q

from gitops.models import FluxObject, ObjectEvent

from .models import Application
from .status import CLUSTER_LABEL, flux_objects


@dataclass(frozen=True)
class RegionRuntime:
    region: str
    release: FluxObject | None
    kustomization: FluxObject | None
    events: list[ObjectEvent] = field(default_factory=list)

    @property
    def chart(self) -> dict[str, Any]:
        return dict(self.release.details) if self.release else {}

    @property
    def deployed(self) -> dict[str, Any]:
        """The newest Helm release revision that deployed (history is newest first)."""
        history = self.chart.get("history") or []
        return next((h for h in history if h.get("status") == "deployed"), {})


def regions(app: Application, live: list[FluxObject] | None = None) -> list[RegionRuntime]:
    """Per region of the Application (the active one first); two queries in all (one when its
    live Flux objects are given)."""
    if app.pk is None:
        return []
    live = flux_objects(app) if live is None else live
    objects = [o for o in live if o.kind in ("HelmRelease", "Kustomization")]
    events = _events(objects)
    found = []
    for region in app.regions:
        mine = [o for o in objects if o.labels.get(CLUSTER_LABEL) == region]
        release = next((o for o in mine if o.kind == "HelmRelease"), None)
        kustomization = next((o for o in mine if o.kind == "Kustomization"), None)
        keys = {_key(o) for o in (release, kustomization) if o is not None}
        found.append(
            RegionRuntime(
                region,
                release,
                kustomization,
                [e for e in events if (e.cluster, e.kind, e.namespace, e.name) in keys],
            )
        )
    return found


def _key(obj: FluxObject) -> tuple[str, str, str, str]:
    return (obj.cluster, obj.kind, obj.namespace, obj.name)


def _events(objects: list[FluxObject]) -> list[ObjectEvent]:
    if not objects:
        return []
    match = Q()
    for obj in objects:
        match |= Q(cluster=obj.cluster, kind=obj.kind, namespace=obj.namespace, name=obj.name)
    limit = settings.FLUX_EVENTS_PER_OBJECT * len(objects)
    return list(ObjectEvent.objects.filter(match).order_by("-last_seen", "-id")[:limit])
