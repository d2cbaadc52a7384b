"""Writes to Organizations and Environments: one transaction, one audit event, one outbox row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import audit, events, outbox
from core.actors import Actor, person
from core.errors import ConflictError
from core.models import AuditEvent, OutboxItem
from core.text import control_character_problem
from gitops import delivery
from gitops import events as status_events
from gitops.flux import register_handler
from gitops.models import FluxObject
from gitops.sync import Desired, ensure_repo, sync_many
from rbac import services as rbac_services

from . import manifests
from . import status as org_status
from .models import MAX_REGIONS, Environment, HostCluster, Organization, OrgState
from .naming import ENV_TYPES, placement_problem, slug_problem

SYNC_TASK = "orgs.tasks.sync_organization_task"
ORG_FIELDS = [
    "slug",
    "display_name",
    "kind",
    "tier",
    "billing_mode",
    "plan_code",
    "default_env_type",
    "state",
    "suspended_reason",
    "archived_at",
]
SHARED_BLUEPRINTS_REPO = "shared-blueprints"


def _schedule_sync(org: Organization, *, by: Actor, event: AuditEvent) -> OutboxItem:
    return outbox.enqueue(SYNC_TASK, org.pk, actor=by, audit_event=event)


def slug_available(slug: str) -> str | None:
    """Why `slug` cannot be used (rules, reserved, taken), or None when it is free."""
    problem = slug_problem(slug)
    if problem:
        return problem
    if Organization.objects.filter(slug=slug).exists():
        return f"“{slug}” is already taken."
    return None


def _validate_display_name(display_name: str) -> str:
    display_name = (display_name or "").strip()
    if not 1 <= len(display_name) <= 128:
        raise ValidationError({"display_name": "Enter a display name of 1 to 128 characters."})
    if problem := control_character_problem(display_name):
        raise ValidationError({"display_name": problem})
    return display_name


def create_organization(
    *,
    by: Actor,
    slug: str,
    display_name: str,
    kind: str = "customer",
    tier: str = "sme",
    billing_mode: str = "real",
    plan_code: str = "",
    default_env_type: str = "prod",
    parent: Organization | None = None,
    environments: list[dict[str, Any]] | None = None,
) -> Organization:
    """Create an Organization (its creator becomes owner) and optionally its first Environments."""
    problem = slug_problem(slug)
    if problem:
        raise ValidationError({"slug": problem})
    display_name = _validate_display_name(display_name)
    org = Organization(
        slug=slug,
        display_name=display_name,
        kind=kind,
        tier=tier,
        billing_mode=billing_mode,
        plan_code=plan_code,
        default_env_type=default_env_type,
        parent=parent,
        created_by=person(by),
    )
    org.full_clean(exclude=["slug", "created_by", "parent"])
    try:
        with transaction.atomic():
            org.save()
            event = audit.record(
                "organization.create",
                actor=by,
                target=org,
                org_slug=slug,
                after=audit.snapshot(org, ORG_FIELDS),
            )
            for index, env in enumerate(environments or []):
                _add_environment(org, by=by, field_prefix=f"environments[{index}].", **env)
            events.emit(
                "tenant.created",
                {
                    "organization": slug,
                    "display_name": display_name,
                    "kind": kind,
                    "tier": tier,
                    "plan": plan_code,
                },
            )
            rbac_services.assign(
                by=by,
                user=by,
                tier="owner",
                scopes=[{"key": rbac_services.ORG_LABEL, "value": slug}],
                deliver=False,
            )
            _schedule_sync(org, by=by, event=event)
    except IntegrityError:
        if Organization.objects.filter(slug=slug).exists():
            raise ConflictError({"slug": f"“{slug}” is already taken."}) from None
        raise
    return org


def _resolve_regions(regions: list[str], field: str, env_type: str) -> list[HostCluster]:
    names = list(dict.fromkeys(regions))
    if not 1 <= len(names) <= MAX_REGIONS:
        raise ValidationError({field: f"Choose 1 to {MAX_REGIONS} regions (host clusters)."})
    found = {c.name: c for c in HostCluster.objects.filter(name__in=names)}
    unknown = [n for n in names if n not in found]
    if unknown:
        raise ValidationError({field: f"Unknown host cluster: {', '.join(unknown)}."})
    clusters = [found[n] for n in names]
    if problem := placement_problem(env_type, [(c.name, c.env_type) for c in clusters]):
        raise ValidationError({field: problem})
    return clusters


def _add_environment(
    org: Organization,
    *,
    by: Actor,
    env_type: str,
    regions: list[str],
    policy: dict[str, Any] | None = None,
    field_prefix: str = "",
) -> tuple[Environment, AuditEvent]:
    if env_type not in ENV_TYPES:
        raise ValidationError({f"{field_prefix}env_type": f"Choose one of {', '.join(ENV_TYPES)}."})
    clusters = _resolve_regions(regions, f"{field_prefix}regions", env_type)
    if Environment.objects.filter(organization=org, env_type=env_type).exists():
        raise ConflictError(
            {f"{field_prefix}env_type": f"{org.slug} already has a {env_type} Environment."}
        )
    env = Environment.objects.create(
        organization=org,
        env_type=env_type,
        name=f"{org.slug}-{env_type}",
        placement="multi-region" if len(clusters) > 1 else "single-region",
        policy=policy or {},
        created_by=person(by),
    )
    env.regions.set(clusters)
    after = {
        "name": env.name,
        "env_type": env_type,
        "placement": env.placement,
        "regions": [c.name for c in clusters],
    }
    event = audit.record(
        "environments.create", actor=by, target=env, org_slug=org.slug, after=after
    )
    return env, event


def create_environment(
    *,
    by: Actor,
    org: Organization,
    env_type: str,
    regions: list[str],
    policy: dict[str, Any] | None = None,
) -> Environment:
    _require_writable(org)
    try:
        with transaction.atomic():
            Organization.objects.select_for_update().filter(pk=org.pk).first()
            env, event = _add_environment(
                org, by=by, env_type=env_type, regions=regions, policy=policy
            )
            _schedule_sync(org, by=by, event=event)
    except IntegrityError:
        raise ConflictError(
            {"env_type": f"{org.slug} already has a {env_type} Environment."}
        ) from None
    return env


def update_environment_regions(*, by: Actor, env: Environment, regions: list[str]) -> Environment:
    org = env.organization
    _require_writable(org)
    clusters = _resolve_regions(regions, "regions", env.env_type)
    with transaction.atomic():
        before = {"regions": sorted(c.name for c in env.regions.all()), "placement": env.placement}
        env.placement = "multi-region" if len(clusters) > 1 else "single-region"
        env.save(update_fields=["placement"])
        env.regions.set(clusters)
        after = {"regions": sorted(c.name for c in clusters), "placement": env.placement}
        event = audit.record(
            "environments.update",
            actor=by,
            target=env,
            org_slug=org.slug,
            before=before,
            after=after,
        )
        _schedule_sync(org, by=by, event=event)
    return env


def _require_writable(org: Organization) -> None:
    if not org.is_writable:
        raise ConflictError({"state": f"{org.slug} is {org.state}; resume it first."})


def rename_organization(*, by: Actor, org: Organization, display_name: str) -> Organization:
    display_name = _validate_display_name(display_name)
    if display_name == org.display_name:
        return org
    return _change(org, by=by, action="organization.update", display_name=display_name)


def _change(org: Organization, *, by: Actor, action: str, **values: Any) -> Organization:
    return _change_with_event(org, by=by, action=action, **values)[0]


def _change_with_event(
    org: Organization, *, by: Actor, action: str, **values: Any
) -> tuple[Organization, AuditEvent]:
    with transaction.atomic():
        locked = Organization.objects.select_for_update().get(pk=org.pk)
        before = audit.snapshot(locked, list(values))
        for name, value in values.items():
            setattr(locked, name, value)
        locked.save(update_fields=[*values, "updated_at"])
        event = audit.record(
            action,
            actor=by,
            target=locked,
            org_slug=locked.slug,
            before=before,
            after=audit.snapshot(locked, list(values)),
        )
        _schedule_sync(locked, by=by, event=event)
    return locked, event


_lifecycle_listeners: list[Any] = []


def on_lifecycle_changed(callback: Any) -> Any:
    """Register `callback(org=, by=, event=)`, run inside the transaction that suspends, resumes,
    archives or restores an Organization; marketplace uses it to re-deliver the Organization's
    Applications (scaled to zero while suspended), since orgs does not import marketplace."""
    if callback not in _lifecycle_listeners:
        _lifecycle_listeners.append(callback)
    return callback


def _lifecycle_change(org: Organization, *, by: Actor, action: str, **values: Any) -> Organization:
    with transaction.atomic():
        changed, event = _change_with_event(org, by=by, action=action, **values)
        for callback in _lifecycle_listeners:
            callback(org=changed, by=by, event=event)
    return changed


def suspend_organization(*, by: Actor, org: Organization, reason: str = "manual") -> Organization:
    """Suspend: the Organization CR says `lifecycle: suspended` and its Applications are scaled
    to zero, both committed through Git; nothing is deleted. `reason` is "manual" or "unpaid"."""
    if org.state == OrgState.ARCHIVED:
        raise ConflictError({"state": "An archived Organization cannot be suspended."})
    if org.state == OrgState.SUSPENDED:
        return org
    return _lifecycle_change(
        org,
        by=by,
        action="organization.suspend",
        state=OrgState.SUSPENDED,
        suspended_reason=reason,
    )


def resume_organization(*, by: Actor, org: Organization) -> Organization:
    if org.state != OrgState.SUSPENDED:
        raise ConflictError({"state": "Only a suspended Organization can be resumed."})
    state = OrgState.PROVISIONING if org.last_commit_sha else OrgState.PENDING
    return _lifecycle_change(
        org, by=by, action="organization.resume", state=state, suspended_reason=""
    )


def archive_organization(*, by: Actor, org: Organization) -> Organization:
    if org.state == OrgState.ARCHIVED:
        return org
    return _lifecycle_change(
        org,
        by=by,
        action="organization.archive",
        state=OrgState.ARCHIVED,
        archived_at=timezone.now(),
    )


def restore_deadline(org: Organization) -> Any:
    """Until when an archived Organization can be restored (None when it is not archived)."""
    if org.state != OrgState.ARCHIVED or org.archived_at is None:
        return None
    return org.archived_at + timedelta(days=settings.ORG_RESTORE_DAYS)


def restore_organization(*, by: Actor, org: Organization) -> Organization:
    """Bring an archived Organization back within the retention period (`ORG_RESTORE_DAYS`)."""
    deadline = restore_deadline(org)
    if deadline is None:
        raise ConflictError({"state": "Only an archived Organization can be restored."})
    if deadline < timezone.now():
        raise ConflictError(
            {
                "state": f"{org.slug} was archived more than {settings.ORG_RESTORE_DAYS} days ago; "
                "the retention period is over."
            }
        )
    state = OrgState.PROVISIONING if org.last_commit_sha else OrgState.PENDING
    return _lifecycle_change(
        org,
        by=by,
        action="organization.restore",
        state=state,
        archived_at=None,
        suspended_reason="",
    )


def deliver_organization(*, org_id: int, item: OutboxItem) -> str | None:
    """Commit the Organization's desired files and ensure its Gitea Org and shared-blueprints repo."""
    outcome = _deliver_organizations([(org_id, item)])[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def deliver_organizations(items: list[OutboxItem]) -> list[str | Exception | None]:
    """Deliver the Organizations of several outbox rows (keys: Organization ids) in ONE commit to
    catalyst-config (a group commit, `gitops.sync.sync_many`), each still attributed in the
    message. Returns an outcome per row: the commit carrying its files, or the exception that
    kept it out (its Organization then says "retrying" with the error); one Organization whose
    rendering, shared-blueprints repo, validation or drift check fails does not hold the others
    back."""
    return _deliver_organizations([(int(item.key), item) for item in items])


def _deliver_organizations(work: list[tuple[int, OutboxItem]]) -> list[str | Exception | None]:
    orgs = Organization.objects.select_related("parent").in_bulk([org_id for org_id, _ in work])
    outcomes: list[str | Exception | None] = [None] * len(work)
    ready: list[int] = []  # indexes of `work` whose Organization was rendered
    desireds: list[Desired] = []
    for index, (org_id, _item) in enumerate(work):
        org = orgs.get(org_id)
        if org is None:
            outcomes[index] = Organization.DoesNotExist(f"Organization {org_id} does not exist")
            continue
        try:
            ensure_repo(
                org.slug,
                SHARED_BLUEPRINTS_REPO,
                description=f"Blueprints shared inside {org.display_name}",
            )
            desireds.append(manifests.organization_tree(org))
        except Exception as exc:
            outcomes[index] = exc
            continue
        ready.append(index)
    parts = [(work[i][1], f"organization {orgs[work[i][0]].slug}") for i in ready]
    try:
        results = sync_many(
            desireds,
            compose=lambda changed: delivery.group_commit(
                [parts[c] for c in changed], "organizations"
            ),
        )
    except Exception as exc:  # the commit itself failed (Git down, kept moving): all retry
        results = [exc] * len(ready)
    for index, result in zip(ready, results, strict=True):
        outcomes[index] = result if isinstance(result, Exception) else result.head
    delivered: dict[str | None, list[int]] = {}
    for index, (org_id, _item) in enumerate(work):
        outcome = outcomes[index]
        if isinstance(outcome, Exception):
            if org_id in orgs:
                delivery.mark_retrying(*_org_and_environments([org_id]), exc=outcome)
        else:
            delivered.setdefault(outcome, []).append(org_id)
    # The tree holds every Environment's file: they are delivered by the same commit.
    for head, org_ids in delivered.items():
        delivery.mark_delivered(*_org_and_environments(org_ids), head=head)
        Organization.objects.filter(pk__in=org_ids, state=OrgState.PENDING).update(
            state=OrgState.PROVISIONING
        )
    return outcomes


def _org_and_environments(org_ids: list[int]) -> tuple[Any, Any]:
    return (
        Organization.objects.filter(pk__in=org_ids),
        Environment.objects.filter(organization_id__in=org_ids),
    )


@rbac_services.on_grants_changed
def _grants_changed(*, org_slug: str, by: Actor, event: AuditEvent) -> None:
    org = Organization.objects.filter(slug=org_slug).first() if org_slug else None
    if org is not None:
        _schedule_sync(org, by=by, event=event)


def record_flux_state(*, org: Organization) -> None:
    """What Flux reports about the Organization's last commit, read and stored under the row's
    lock: of two changes handled at once (two watcher threads, a relist beside a watch) the one
    written last is the latest reading, so a Kustomization that became Ready never leaves the
    Organization `failed`. A state change is audited (no actor). Only a provisioning, ready or
    failed Organization follows Flux (not while pending, suspended or archived)."""
    with transaction.atomic():
        locked = Organization.objects.select_for_update().get(pk=org.pk)
        current = org_status.org_status(locked)
        state = org_status.STATE_FOR.get(current.state, OrgState.PROVISIONING)
        if locked.state not in org_status.FOLLOWED_STATES or locked.state == state:
            return
        before = {"state": locked.state}
        locked.state = state
        locked.save(update_fields=["state", "updated_at"])
        audit.record(
            "organization.reconcile",
            actor=None,
            target=locked,
            org_slug=locked.slug,
            before=before,
            after={"state": state, "reason": current.reason, "message": current.message},
        )


def refresh_status(org: Organization) -> None:
    """Re-read the Organization's Flux state and record a state change (both under its row lock:
    `record_flux_state`), then tell its stream that it changed (the stream renders)."""
    record_flux_state(org=org)
    status_events.publish(org_status.topic(org.slug), {"event": org_status.EVENT})


def on_flux_changes(objs: list[FluxObject]) -> None:
    """Changed Flux objects (one per watch event, all of a relist): each affected Organization
    is found in one query and refreshed once."""
    for org in org_status.affected(objs):
        refresh_status(org)


def connect() -> None:
    """Called from OrgsConfig.ready(): follow what Flux reports about each Organization."""
    register_handler(on_flux_changes)
