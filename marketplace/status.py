"""An Application's live state, from what Flux reports about its objects (SPEC §7).

Per Application, Flux runs a GitRepository (the app repo, on the env-type branch) and one
Kustomization per host cluster in system/catalyst-config, and the HelmRelease from the app repo
on each host cluster; all carry the organization, environment and application labels (and the
host-cluster label where they belong to one region). Per region the state is the worst of that
region's objects as judged by `gitops.status.revision_status` against the commit the portal made
(`<branch>@sha1:<last_commit_sha>`): an old revision's Ready=True is not ready. A region without a
Kustomization yet is `committed`; one whose HelmRelease the watcher has not seen yet is at best
`reconciling` (the release is what runs). The Application's state is the worst region's; Flux's reason and
message are stored verbatim. An uninstalling Application is drained once every Flux object of it
that the watcher has seen is gone. Each change is published on the Application's topic (that it
changed: the stream in `streams.py` renders the fragment for whoever follows it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Case, F, Q, When
from django.template.loader import render_to_string

from core.models import AuditEvent, OutboxItem
from gitops import naming, status
from gitops.models import FluxCluster, FluxEvent, FluxObject

from .models import Application, AppState

ORG_LABEL = naming.ORGANIZATION_LABEL
ENV_LABEL = naming.ENVIRONMENT_LABEL
APP_LABEL = naming.APPLICATION_LABEL
CLUSTER_LABEL = naming.HOST_CLUSTER_LABEL
EVENT = "app-status"
FRAGMENT = "marketplace/app_detail.html#status"
GONE_HTML = '<p data-app-state="gone">Uninstalled.</p>'
STATE_FOR = {
    status.COMMITTED: AppState.COMMITTED,
    status.RECONCILING: AppState.RECONCILING,
    status.READY: AppState.READY,
    status.DEGRADED: AppState.DEGRADED,
    status.FAILED: AppState.FAILED,
}


def topic(app: Application) -> str:
    return f"app:{app.environment.name}/{app.name}"


@dataclass(frozen=True)
class AppStatus:
    state: str
    reason: str = ""
    message: str = ""
    revision: str = ""
    regions: list[dict[str, str]] = field(default_factory=list)


def flux_objects(app: Application, *, live: bool = True) -> list[FluxObject]:
    qs = FluxObject.objects.labelled(
        **{
            ORG_LABEL: app.environment.organization.slug,
            ENV_LABEL: app.environment.name,
            APP_LABEL: app.name,
        }
    )
    return list(qs.live() if live else qs)


def app_status(app: Application, objects: list[FluxObject] | None = None) -> AppStatus:
    if not app.last_commit_sha:
        return AppStatus(status.COMMITTED, message="Not committed yet.")
    objects = flux_objects(app) if objects is None else objects
    branch = naming.branch_for(app.environment.env_type)
    regions = []
    found = []
    for region in app.regions:
        mine = [o for o in objects if o.labels.get(CLUSTER_LABEL) in (region, None)]
        kustomization = next(
            (o for o in mine if o.kind == "Kustomization" and o.labels.get(CLUSTER_LABEL)), None
        )
        if kustomization is None:
            here = status.revision_status(app.last_commit_sha, branch, None)
        else:
            judged = [
                (o.kind, status.revision_status(app.last_commit_sha, branch, o)) for o in mine
            ]
            if not any(
                o.kind == "HelmRelease" and o.labels.get(CLUSTER_LABEL) == region for o in mine
            ):
                judged.append(("HelmRelease", _unseen_release(app)))
            here = _worst(judged)
        revision = kustomization.applied_revision if kustomization else ""
        found.append((here, revision))
        regions.append(
            {
                "region": region,
                "state": here.state,
                "reason": here.reason,
                "message": here.message,
                "revision": revision,
            }
        )
    worst = status.combine(s for s, _ in found)
    revision = next((r for s, r in found if s == worst), "")
    return AppStatus(worst.state, worst.reason, worst.message, revision, regions)


def _unseen_release(app: Application) -> status.Status:
    """The region's HelmRelease has not reached the watcher yet. Each kind comes on its own watch
    stream, so the Kustomization that created the release (even Ready for the revision) can be
    stored first: the region is not ready until the release itself reports."""
    return status.Status(
        status.RECONCILING, "", f"Waiting for Flux to report HelmRelease {app.name}."
    )


# Among objects in the same state, whose reason and message the Application shows: a failing
# HelmRelease says why the install failed; otherwise the Kustomization speaks for the region.
_VOICE = {"Kustomization": 0, "HelmRelease": 1, "GitRepository": 2}


def _worst(found: list[tuple[str, status.Status]]) -> status.Status:
    worst = status.combine(s for _, s in found)

    def voice(kind_status: tuple[str, status.Status]) -> int:
        kind, found_status = kind_status
        if kind == "HelmRelease" and found_status.state in (status.FAILED, status.DEGRADED):
            return -1
        return _VOICE.get(kind, 3)

    speakers = sorted(((k, s) for k, s in found if s.state == worst.state), key=voice)
    return speakers[0][1] if speakers else worst


def lost_clusters(app: Application) -> list[FluxCluster]:
    """Watched clusters of the app's regions whose connection is lost (its state may be stale)."""
    return [c for c in FluxCluster.objects.filter(name__in=app.regions) if not c.is_healthy]


def fragment_context(app: Application) -> dict[str, Any]:
    """What the status fragment shows (on the page and in each live update): the timeline, the
    lost clusters and the runtime per region, from the app's Flux objects read once."""
    from .runtime import regions

    seen = flux_objects(app, live=False) if app.pk is not None else []
    return {
        "app": app,
        "timeline": timeline(app, seen=seen),
        "lost_clusters": lost_clusters(app),
        "runtime": regions(app, [o for o in seen if o.deleted_at is None]),
    }


def render_fragment(app: Application) -> str:
    return render_to_string(FRAGMENT, fragment_context(app))


# --- timeline ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: str  # action, task, commit, flux
    title: str
    detail: str = ""


GIT_TITLES = {
    "applications.git_change": "Changed via Git by {pusher} (commit {commit})",
    "applications.git_invalid": "Git holds an invalid change by {pusher} (commit {commit})",
    "applications.git_conflict": "Conflict: {pusher} changed the values in Git (commit {commit}) "
    "while a portal change was pending",
    "applications.git_keep": "Kept Git's version (commit {commit})",
    "applications.git_overwrite": "Replaced Git's change (commit {commit}) with the portal's",
    "applications.promote": "Promoted from {from} (revision {revision}) by {actor}, "
    "merged as {commit}",
}


def timeline(
    app: Application, limit: int = 50, *, seen: list[FluxObject] | None = None
) -> list[Step]:
    """Portal action → audit event → task → commit → Flux conditions, oldest first: the last
    `limit` steps. Each source is read newest first, `limit` rows at most (a step older than
    `limit` newer ones of its own source cannot be among the last `limit`), so the cost does not
    grow with the Application's history. `seen`: the app's Flux objects, deleted ones too (read
    here when not given)."""
    if app.pk is None:
        return []
    audits = AuditEvent.objects.filter(
        target_type=Application._meta.label_lower, target_id=str(app.pk)
    )
    shown = audits.exclude(action="applications.reconcile")  # Flux's conditions say it better
    steps: list[Step] = []
    for event in reversed(list(shown.defer("before").order_by("-created_at", "-id")[:limit])):
        after = event.after or {}
        if event.action == "applications.commit":
            steps.append(Step(event.created_at, "commit", f"Commit {after.get('commit', '')}", ""))
        elif event.action in GIT_TITLES:
            title = GIT_TITLES[event.action].format_map(
                {
                    **{k: str(v) for k, v in after.items()},
                    "pusher": after.get("pusher") or event.actor_repr,
                    "commit": str(after.get("commit"))[:10],
                    "revision": str(after.get("revision"))[:10],
                    "actor": event.actor_repr,
                }
            )
            steps.append(
                Step(
                    event.created_at, "git", title, f"audit event #{event.pk} by {event.actor_repr}"
                )
            )
        else:
            who = event.actor_repr or "portal"
            steps.append(
                Step(event.created_at, "action", event.action, f"audit event #{event.pk} by {who}")
            )
    # a task's last step: done, else retrying, else queued
    last_step = Case(
        When(done_at__isnull=False, then=F("done_at")),
        When(~Q(last_error=""), then=F("available_at")),
        default=F("created_at"),
    )
    tasks = (
        OutboxItem.objects.filter(audit_event__in=audits)
        .annotate(last_step=last_step)
        .order_by("-last_step", "-id")[:limit]
    )
    for item in sorted(tasks, key=lambda i: (i.created_at, i.pk)):
        steps.append(Step(item.created_at, "task", f"Task {item.task_name} queued", ""))
        if item.done_at:
            tries = f" after {item.attempts} attempt(s)" if item.attempts > 1 else ""
            steps.append(Step(item.done_at, "task", f"Task done{tries}", ""))
        elif item.last_error:
            steps.append(Step(item.available_at, "task", "Task retrying", item.last_error))
    seen = flux_objects(app, live=False) if seen is None else seen
    flux = FluxEvent.objects.filter(obj__in=seen, at__gte=app.created_at).select_related("obj")
    for ev in reversed(list(flux.order_by("-at", "-id")[:limit])):
        where = ev.obj.labels.get(CLUSTER_LABEL) or ev.obj.cluster
        if ev.event == "deleted":
            title = f"{ev.obj.kind} {ev.obj.name} removed ({where})"
            steps.append(Step(ev.at, "flux", title))
        else:
            title = f"{ev.obj.kind} {ev.obj.name} ({where}): {ev.type}={ev.status} {ev.reason}"
            steps.append(Step(ev.at, "flux", title, ev.message))
    steps.sort(key=lambda s: s.at)
    return steps[-limit:]


# --- watcher hook --------------------------------------------------------------------------------


def affected(objs: list[FluxObject]) -> Any:
    """The Applications the changed Flux objects belong to (by their labels)."""
    keys = {
        (o.labels[ORG_LABEL], o.labels[ENV_LABEL], o.labels[APP_LABEL])
        for o in objs
        if o.labels.get(ORG_LABEL) and o.labels.get(ENV_LABEL) and o.labels.get(APP_LABEL)
    }
    if not keys:
        return Application.objects.none()
    from django.db.models import Q

    match = Q()
    for org_slug, env_name, name in keys:
        match |= Q(environment__organization__slug=org_slug, environment__name=env_name, name=name)
    return Application.objects.filter(match).select_related(
        "blueprint_version__blueprint", "environment__organization"
    )


__all__ = [
    "EVENT",
    "AppStatus",
    "affected",
    "app_status",
    "fragment_context",
    "render_fragment",
    "timeline",
    "topic",
]
