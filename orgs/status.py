"""An Organization's provisioning state, from what Flux reports about its CRs (SPEC §5).

The Organization's CRs live in system/catalyst-config. Flux applies them through a Kustomization
labelled `openova.io/organization=<slug>` when there is one, else through the catalyst-config
Kustomization (settings.FLUX_CONFIG_KUSTOMIZATION). The Organization is ready when that
Kustomization reports Ready=True for a revision that includes the commit the portal made
(`main@sha1:<last_commit_sha>`); failed, with Flux's reason and message verbatim, when it reports
a terminal failure for it. Each change is published on the org's topic (that it changed: the
stream in `streams.py` renders the fragment for whoever follows it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.template.loader import render_to_string

from gitops import naming, status, sync
from gitops.flux import CLUSTERS_TOPIC
from gitops.models import FluxCluster, FluxObject

from .models import Organization, OrgState

ORG_LABEL = naming.ORGANIZATION_LABEL
APP_LABEL = naming.APPLICATION_LABEL
EVENT = "org-status"
FRAGMENT = "orgs/partials/flux_status.html"
FOLLOWED_STATES = (OrgState.PROVISIONING, OrgState.READY, OrgState.FAILED)
STATE_FOR = {
    status.READY: OrgState.READY,
    status.FAILED: OrgState.FAILED,
    status.DEGRADED: OrgState.FAILED,
}


def topic(slug: str) -> str:
    return f"org:{slug}"


@dataclass(frozen=True)
class OrgStatus:
    state: str
    reason: str = ""
    message: str = ""
    revision: str = ""
    objects: list[FluxObject] = field(default_factory=list)
    lost_clusters: list[FluxCluster] = field(default_factory=list)
    watched: bool = False


def _config_kustomization() -> tuple[str, str]:
    namespace, _, name = settings.FLUX_CONFIG_KUSTOMIZATION.partition("/")
    return namespace, name


def flux_objects(org: Organization) -> list[FluxObject]:
    """The Kustomizations that apply this Organization's CRs (on every watched cluster)."""
    live = FluxObject.objects.live().filter(kind="Kustomization")
    # an Application's Kustomizations carry the organization label too; they are not the org's
    own = list(live.labelled(**{ORG_LABEL: org.slug}).exclude(labels__has_key=APP_LABEL))
    if own:
        return own
    namespace, name = _config_kustomization()
    return list(live.filter(namespace=namespace, name=name))


def org_status(org: Organization) -> OrgStatus:
    clusters = list(FluxCluster.objects.all())
    lost = [c for c in clusters if not c.is_healthy]
    if not org.last_commit_sha:
        return OrgStatus("pending", message="Not committed yet.", lost_clusters=lost)
    owner, repo, branch = naming.config_repo()

    def contains(revision: str) -> bool:
        sha = revision.rsplit(":", 1)[-1]
        return sync.contains(owner, repo, sha, org.last_commit_sha) is True

    objects = flux_objects(org)
    found = status.combine(
        status.revision_status(org.last_commit_sha, branch, obj, contains=contains)
        for obj in objects or [None]  # type: ignore[list-item]
    )
    if not clusters:
        found = status.Status(found.state, "", "Committed; no cluster connected.")
    return OrgStatus(
        found.state,
        found.reason,
        found.message,
        revision=status.wanted_revision(branch, org.last_commit_sha),
        objects=objects,
        lost_clusters=lost,
        watched=bool(clusters),
    )


def render_fragment(org: Organization) -> str:
    return render_to_string(FRAGMENT, {"org": org, "flux": org_status(org)})


def affected(objs: list[FluxObject]) -> Any:
    """The Organizations the changed Flux objects speak for (their own Kustomization, or the
    catalyst-config one for every followed Organization)."""
    kustomizations = [o for o in objs if o.kind == "Kustomization"]
    slugs = {
        o.labels[ORG_LABEL]
        for o in kustomizations
        if o.labels.get(ORG_LABEL) and not o.labels.get(APP_LABEL)
    }
    if any((o.namespace, o.name) == _config_kustomization() for o in kustomizations):
        followed = ~Q(last_commit_sha="") & Q(state__in=FOLLOWED_STATES)
        return Organization.objects.filter(Q(slug__in=slugs) | followed)
    if slugs:
        return Organization.objects.filter(slug__in=slugs)
    return Organization.objects.none()


__all__ = [
    "CLUSTERS_TOPIC",
    "EVENT",
    "OrgStatus",
    "affected",
    "org_status",
    "render_fragment",
    "topic",
]
