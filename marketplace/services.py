"""Writes to Applications: plans, install, delivery, drain and Flux state (changes after the
install — values, size, placement, rollback, upgrade, uninstall — are in `changes.py`).

Each service owns its transaction, writes one audit event per Application and an outbox row; the
delivery task renders the complete desired files and commits them through `gitops`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import audit, outbox
from core.actors import Actor, person
from core.errors import ConflictError
from core.models import OutboxItem
from gitops import delivery, events, naming
from gitops import status as gitops_status
from gitops.backend import GitDrift
from gitops.flux import register_handler
from gitops.sync import sync
from orgs import members
from orgs import services as org_services
from orgs.models import Environment, Organization

from . import manifests, plans
from . import status as app_status
from .models import Application, AppState, BlueprintVersion, InstallPlan

SYNC_TASK = "marketplace.tasks.sync_application_task"
APP_FIELDS = ["name", "values", "size", "placement", "regions", "dependencies", "state"]


def snapshot(app: Application) -> dict[str, Any]:
    data = audit.snapshot(app, APP_FIELDS)
    data["blueprint"] = app.blueprint_version.blueprint.name
    data["version"] = app.blueprint_version.version
    return data


def ensure_writable(env: Environment) -> None:
    if not env.organization.is_writable:
        raise ConflictError(
            {
                "environment": f"{env.organization.slug} is {env.organization.state}; resume it first."
            }
        )


def schedule_delivery(
    app: Application,
    *,
    by: Actor,
    action: str,
    before: dict[str, Any] | None,
    actor_repr: str = "",
    extra: dict[str, Any] | None = None,
) -> OutboxItem:
    event = audit.record(
        action,
        actor=by,
        target=app,
        org_slug=app.environment.organization.slug,
        before=before,
        after={**snapshot(app), **(extra or {})},
        actor_repr=actor_repr,
    )
    item = outbox.enqueue(SYNC_TASK, app.pk, actor=by, audit_event=event)
    for dependant in _dependants_of(app):  # their wiring reads this app's outputs: re-render
        outbox.enqueue(SYNC_TASK, dependant.pk, actor=by)
    return item


def _dependants_of(app: Application) -> list[Application]:
    return [
        other
        for other in Application.objects.filter(environment_id=app.environment_id)
        .exclude(pk=app.pk)
        .exclude(state=AppState.UNINSTALLING)
        .only("pk", "name", "dependencies")
        if app.name in (other.dependencies or {}).values()
    ]


# --- plans and previews ------------------------------------------------------------------------


def make_plan(
    *,
    by: Actor,
    env: Environment,
    version: BlueprintVersion,
    name: str,
    values: dict[str, Any],
    placement: str = "single-region",
    regions: list[str] | None = None,
    size: str = "small",
    choices: dict[str, str] | None = None,
) -> InstallPlan:
    """Resolve and keep a plan (for the preview and the confirmation)."""
    inputs: dict[str, Any] = {
        "name": name,
        "values": values,
        "placement": placement,
        "regions": list(regions or []),
        "size": size,
        "choices": dict(choices or {}),
    }
    resolved, apps = plans.resolve_applications(env=env, version=version, **inputs)
    plan = InstallPlan.objects.create(
        environment=env,
        blueprint_version=version,
        requested_by=person(by),
        data={"inputs": inputs, **resolved},
    )
    plan.applications = apps  # the preview that follows renders these (no second read)
    return plan


unsaved_application = plans.unsaved_application


# --- install / update / upgrade / uninstall ----------------------------------------------------


def apply_plan(*, by: Actor, plan: InstallPlan) -> Application:
    """Install a previewed plan; it is re-resolved first, and refused if anything changed."""
    if plan.applied_at is not None:
        raise ConflictError({"plan": "This plan was already installed."})
    env = plan.environment
    ensure_writable(env)
    resolved = plans.resolve(env=env, version=plan.blueprint_version, **plan.data["inputs"])
    if resolved["apps"] != plan.data["apps"] or resolved["uses"] != plan.data["uses"]:
        raise ConflictError(
            {"plan": "The Environment changed since the preview; review the plan again."}
        )
    root = _create(by=by, env=env, resolved=resolved)
    InstallPlan.objects.filter(pk=plan.pk).update(applied_at=timezone.now())
    return root


def install(
    *,
    by: Actor,
    env: Environment,
    version: BlueprintVersion,
    name: str,
    values: dict[str, Any],
    placement: str = "single-region",
    regions: list[str] | None = None,
    size: str = "small",
    choices: dict[str, str] | None = None,
) -> Application:
    """Resolve and install in one go (the API's path)."""
    ensure_writable(env)
    resolved = plans.resolve(
        env=env,
        version=version,
        name=name,
        values=values,
        placement=placement,
        regions=regions,
        size=size,
        choices=choices,
    )
    return _create(by=by, env=env, resolved=resolved)


def _create(*, by: Actor, env: Environment, resolved: dict[str, Any]) -> Application:
    versions_by_id = BlueprintVersion.objects.in_bulk([a["version_id"] for a in resolved["apps"]])
    try:
        with transaction.atomic():
            created = []
            for spec in resolved["apps"]:
                app = unsaved_application(env, spec, versions_by_id[spec["version_id"]])
                app.created_by = person(by)
                app.save()
                schedule_delivery(app, by=by, action="applications.install", before=None)
                created.append(app)
    except IntegrityError:
        raise ConflictError(
            {"name": "An Application with that name already exists in this Environment."}
        ) from None
    return created[-1]


def dependents(app: Application) -> list[str]:
    return sorted(o.name for o in _dependants_of(app))


def mark_drained(app: Application) -> bool:
    """Called by the Flux watcher once an uninstalled app's resources are gone: remove the row."""
    with transaction.atomic():
        deleted, _ = Application.objects.filter(pk=app.pk, state=AppState.UNINSTALLING).delete()
        if deleted:
            audit.record(
                "applications.drained",
                actor=None,
                target=app,
                org_slug=app.environment.organization.slug,
            )
    return bool(deleted)


FLUX_STATES = (
    AppState.COMMITTED,
    AppState.RECONCILING,
    AppState.READY,
    AppState.DEGRADED,
    AppState.FAILED,
)


def record_flux_state(
    *,
    app: Application,
    state: str | None = None,
    reason: str = "",
    message: str = "",
    revision: str = "",
    conditions: list[dict[str, Any]] | None = None,
) -> Application:
    """What Flux reports about the Application's last commit, read and stored under the row's
    lock: of two changes handled at once (two watcher threads, a watcher and a worker) the one
    written last is the latest reading, so a HelmRelease that became Ready never leaves the
    Application `failed`. (`state` and the rest given: record that reading instead.) A state
    change is audited (no actor). Only a delivered Application follows Flux (not while pending,
    committing or uninstalling)."""
    with transaction.atomic():
        # the row alone is locked (joined, the Organization's row would be locked too, and every
        # status change of its Applications would queue on it); what it refers to comes from `app`
        # (ordered by its own key: the default ordering would join the Environment for its name)
        mine = Application.objects.select_for_update().filter(pk=app.pk).order_by("pk")
        locked = mine.first()
        if locked is None or locked.state not in FLUX_STATES:
            return locked or app
        locked.with_relations_of(app)
        if state is None:
            current = app_status.app_status(locked)
            state = app_status.STATE_FOR[current.state]
            reason, message, revision = current.reason, current.message, current.revision
            conditions = current.regions
        fields = {
            "status_reason": reason,
            "status_message": message,
            "observed_revision": revision[:128],
            "conditions": conditions or [],
        }
        changed = [k for k, v in fields.items() if getattr(locked, k) != v]
        before = {"state": locked.state}
        if locked.state != state:
            changed.append("state")
        if not changed:
            return locked
        for key, value in fields.items():
            setattr(locked, key, value)
        locked.state = state
        locked.save(update_fields=[*changed, "updated_at"])
        if "state" in changed:
            audit.record(
                "applications.reconcile",
                actor=None,
                target=locked,
                org_slug=locked.environment.organization.slug,
                before=before,
                after={"state": state, "reason": reason, "message": message, "revision": revision},
            )
    return locked


def refresh_status(app: Application) -> None:
    """Record the Application's Flux state and tell its stream that it changed (the streams that
    follow it render the fragment: nothing is rendered here, for nobody in particular). Only a
    delivered Application follows Flux (`app.state`; `record_flux_state` reads the row again under
    its lock)."""
    if app.state == AppState.UNINSTALLING:
        if settings.FLUX_CLUSTER_CONNECTED:
            seen = app_status.flux_objects(app, live=False)
            gone = seen and gitops_status.uninstall_status(seen).state == gitops_status.GONE
            if gone:
                mark_drained(app)
    elif app.state in FLUX_STATES:
        app = record_flux_state(app=app)
    events.publish(app_status.topic(app), {"event": app_status.EVENT})


def on_flux_changes(objs: list[Any]) -> None:
    """The Flux watcher stored changes: refresh the Applications they belong to."""
    for app in app_status.affected(objs):
        refresh_status(app)


# --- delivery ------------------------------------------------------------------------------------


def deliver_application(*, app_id: int, item: OutboxItem) -> str | None:
    """Commit the Application's desired files (app repo, then catalyst-config); level-triggered."""
    app = (
        Application.objects.select_related(
            "blueprint_version__blueprint", "environment__organization"
        )
        .filter(pk=app_id)
        .first()
    )
    if app is None:
        return None
    Application.objects.filter(pk=app.pk, state=AppState.PENDING).update(state=AppState.COMMITTING)
    author = delivery.author_for(item.actor)
    message = delivery.commit_message(item, f"application {app.environment.name}/{app.name}")

    held: list[str] = []
    uninstalling = app.state == AppState.UNINSTALLING
    enforced = not uninstalling and not app.environment.organization.is_writable

    def run() -> str | None:
        from . import gitsync

        inputs = manifests.Inputs()  # read once for the app tree and the config tree
        if enforced:  # suspended or archived: scaled to zero whatever Git holds (kept as is)
            result = sync(
                gitsync.desired_for_delivery(app, enforce=True, inputs=inputs),
                author=author,
                message=message,
            )
            held.append("enforced")
            sync(manifests.config_tree(app, inputs=inputs), author=author, message=message)
            return result.head
        gs = gitsync.state_of(app)
        if not uninstalling and gs.blocked:
            held.append("blocked")  # Git holds a change not taken in: write nothing
            return app.last_commit_sha or None
        written = (item.audit_event.after or {}).get("values_yaml") if item.audit_event else None
        app_desired = gitsync.desired_for_delivery(app, written, gs=gs, inputs=inputs)
        try:
            result = sync(app_desired, author=author, message=message)
        except GitDrift:  # someone pushed since the portal last looked: read that back first
            held.append("drift")
            return app.last_commit_sha or None
        gitsync.delivered(app, result.head, result.blobs)
        sync(manifests.config_tree(app, inputs=inputs), author=author, message=message)
        return result.head

    def recorded(head: str | None) -> None:  # with the commit id, in one transaction
        if held and held != ["enforced"]:  # nothing committed: back to pending
            Application.objects.filter(pk=app.pk, state=AppState.COMMITTING).update(
                state=AppState.PENDING
            )
            return
        if head:  # on the Application's timeline: which commit delivered which action
            audit.record(
                "applications.commit",
                actor=None,
                target=app,
                org_slug=app.environment.organization.slug,
                after={"commit": head, "task": item.pk, "audit_event": item.audit_event_id},
            )
        if not uninstalling:
            Application.objects.filter(
                pk=app.pk, state__in=[AppState.PENDING, AppState.COMMITTING]
            ).update(state=AppState.COMMITTED)
            app.state = AppState.COMMITTED  # delivered: it follows Flux (refresh_status below)

    head = delivery.deliver(app, run, recorded=recorded)
    if held == ["enforced"]:  # committed; then what Git holds is read back as usual
        from . import gitsync

        gitsync.read_back(app)
        held.clear()
    if held:  # nothing committed: Git's change is adopted (a new delivery follows) or shown
        from . import gitsync

        if held == ["drift"]:
            gitsync.read_back(app)
        transaction.on_commit(lambda: refresh_status(app))
        return None
    if uninstalling and not settings.FLUX_CLUSTER_CONNECTED:
        mark_drained(app)
    transaction.on_commit(lambda: refresh_status(app))  # what Flux says of the new commit
    return head


def _refresh_status(app_id: int) -> None:
    app = (
        Application.objects.select_related(
            "blueprint_version__blueprint", "environment__organization"
        )
        .filter(pk=app_id)
        .first()
    )
    if app is not None:
        refresh_status(app)


def _organization_lifecycle_changed(*, org: Organization, by: Actor, event: Any) -> None:
    """Suspend, resume, archive and restore re-render every Application of the Organization:
    its workloads are scaled to zero (or back) by a commit, like every other change."""
    apps = Application.objects.in_org(org.slug).exclude(state=AppState.UNINSTALLING)
    for app_id in apps.values_list("pk", flat=True):
        outbox.enqueue(SYNC_TASK, app_id, actor=by, audit_event=event)


def scope_options(org: Organization) -> list[members.ScopeOption]:
    """The Organization's Applications for the grant scope pickers (an Application is named
    within its Environment: both terms)."""
    apps = (
        Application.objects.in_org(org.slug)
        .exclude(state=AppState.UNINSTALLING)
        .select_related("environment")
        .order_by("environment__name", "name")
    )
    return [
        members.ScopeOption(
            "Applications",
            f"{app.name} in {app.environment.name}",
            (
                (naming.ENVIRONMENT_LABEL, app.environment.name),
                (naming.APPLICATION_LABEL, app.name),
            ),
        )
        for app in apps
    ]


def connect() -> None:
    """Called from MarketplaceConfig.ready(): follow Flux and Organization lifecycle changes, Git
    pushes and promotions; offer Applications to the scope pickers."""
    from . import gitsync, promotion

    register_handler(on_flux_changes)
    members.register_scope_source(scope_options)
    org_services.on_lifecycle_changed(_organization_lifecycle_changed)
    gitsync.connect()
    promotion.connect()
