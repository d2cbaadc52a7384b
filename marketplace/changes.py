"""Changes to an installed Application (day 2): values, size, placement (add or remove a region,
single-region ↔ active-hotstandby, switchover of the active region), rollback to an earlier
revision, upgrade and downgrade, and uninstall with the dependencies nothing else uses.

Each change has two halves: `with_*` validates and returns an unsaved copy of the Application
with the change applied (the preview renders it: files, diff, wiring, price; nothing is written),
and the write applies that copy under a row lock in one transaction with its audit event and
outbox row; the delivery task commits the files. A change that changes nothing commits nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from core.actors import Actor
from core.errors import ConflictError
from core.models import AuditEvent

from . import plans, schema_form, services, versions, when, wiring
from .models import SIZES, Application, AppState, BlueprintVersion, Placement

RELATED = ("blueprint_version__blueprint", "environment__organization")
MAX_MESSAGE = 500  # a commit message given with a change
CHANGEABLE = ["values", "size", "placement", "regions", "dependencies", "blueprint_version"]


def _editable(app: Application) -> None:
    from .gitsync import ensure_in_sync

    services.ensure_writable(app.environment)
    if app.state == AppState.UNINSTALLING:
        raise ConflictError({"state": "This Application is being uninstalled."})
    ensure_in_sync(app)


def _copy(app: Application, **changes: Any) -> Application:
    changed = copy.copy(app)
    for name, value in changes.items():
        setattr(changed, name, value)
    return changed


def _differs(locked: Application, changed: Application, name: str) -> bool:
    if name == "blueprint_version":
        return locked.blueprint_version_id != changed.blueprint_version_id
    return bool(getattr(locked, name) != getattr(changed, name))


def _apply(
    *,
    by: Actor,
    app: Application,
    changed: Application,
    action: str,
    message: str = "",
    text: str = "",
) -> Application:
    """Write the changed fields (if any) with the audit event and the outbox row."""
    with transaction.atomic():
        # the row alone is locked (a join would lock the Organization's row as well: every change
        # of its Applications would queue on it); what it refers to comes from `app`
        locked = Application.objects.select_for_update().get(pk=app.pk).with_relations_of(app)
        if locked.state == AppState.UNINSTALLING:
            raise ConflictError({"state": "This Application is being uninstalled."})
        fields = [name for name in CHANGEABLE if _differs(locked, changed, name)]
        if not fields:
            return locked
        before = services.snapshot(locked)
        for name in fields:
            setattr(locked, name, getattr(changed, name))
        locked.state = AppState.PENDING
        locked.save(update_fields=[*fields, "state", "updated_at"])
        extra: dict[str, Any] = (
            {"message": message.strip()[:MAX_MESSAGE]} if message.strip() else {}
        )
        if text:  # the editor's own text of values.yaml: committed as written
            extra["values_yaml"] = text
        services.schedule_delivery(locked, by=by, action=action, before=before, extra=extra)
    return locked


# --- values and size ---------------------------------------------------------------------------


def with_values(app: Application, values: dict[str, Any], size: str | None = None) -> Application:
    _editable(app)
    values = schema_form.validate(app.blueprint_version.config_schema, values)
    plans.check_application_refs(app.environment, app.blueprint_version.config_schema, values)
    check_dependencies(app, app.blueprint_version, values)
    changed = _copy(app, values=values)
    return with_size(changed, size) if size is not None else changed


def update_values(
    *,
    by: Actor,
    app: Application,
    values: dict[str, Any],
    size: str | None = None,
    message: str = "",
    text: str = "",
) -> Application:
    """New values (the form, the API or the editor); `message` becomes the commit's subject and
    `text` (the editor's values.yaml, saying the same as `values`) is the file committed."""
    return _apply(
        by=by,
        app=app,
        changed=with_values(app, values, size),
        action="applications.update",
        message=message,
        text=text,
    )


def with_size(app: Application, size: str) -> Application:
    _editable(app)
    if size not in SIZES:
        raise ValidationError({"size": f"Choose one of {', '.join(SIZES)}."})
    return _copy(app, size=size)


def resize(*, by: Actor, app: Application, size: str) -> Application:
    return _apply(by=by, app=app, changed=with_size(app, size), action="applications.resize")


# --- placement ---------------------------------------------------------------------------------


def with_placement(app: Application, placement: str, regions: list[str]) -> Application:
    """Another placement: add or remove regions, or switch single-region ↔ active-hotstandby
    (the first region is the active one), within the Blueprint's placementSchema."""
    _editable(app)
    chosen = plans.validate_placement(
        mode=placement,
        regions=list(regions),
        schema=app.blueprint_version.placement_schema,
        env=app.environment,
    )
    return _copy(app, placement=placement, regions=chosen)


def change_placement(
    *, by: Actor, app: Application, placement: str, regions: list[str]
) -> Application:
    changed = with_placement(app, placement, regions)
    return _apply(by=by, app=app, changed=changed, action="applications.placement")


def with_switchover(app: Application, region: str) -> Application:
    """Make a standby region the active one (its replicas come up, the old active stands by)."""
    _editable(app)
    if app.placement != Placement.HOT_STANDBY:
        raise ValidationError({"region": "Switchover needs an active-hotstandby placement."})
    if region not in app.regions:
        raise ValidationError(
            {"region": f"{region} is not a region of {app.name} ({', '.join(app.regions)})."}
        )
    if region == app.regions[0]:
        raise ValidationError({"region": f"{region} is already the active region."})
    return _copy(app, regions=[region, *[r for r in app.regions if r != region]])


def switchover(*, by: Actor, app: Application, region: str) -> Application:
    changed = with_switchover(app, region)
    return _apply(by=by, app=app, changed=changed, action="applications.switchover")


# --- versions: upgrade and downgrade -----------------------------------------------------------


def version_problem(app: Application, target: BlueprintVersion) -> str | None:
    """Why `app` cannot move to `target`, or None when the Blueprint allows it: a newer version
    by its `upgrades.from` / `blocks`, an older one by the current version's `downgradeTo`."""
    current = app.blueprint_version.version
    if target.blueprint_id != app.blueprint_version.blueprint_id:
        return f"{target} is not a version of {app.blueprint.name}."
    if not target.deployable:
        return f"{target.version} cannot be installed."
    if target.version == current:
        return f"{app.name} already runs {current}."
    if versions.SortKey(target.version) < versions.SortKey(current):
        back = app.blueprint_version.upgrades.get("downgradeTo") or []
        if not any(versions.satisfies(target.version, r) for r in back):
            allowed = ", ".join(back) or "no older version"
            return f"{current} can go back only to {allowed}, not to {target.version} (its changes are not reversible)."
        return None
    rules = target.upgrades
    blocked = [r for r in rules.get("blocks") or [] if versions.satisfies(current, r)]
    if blocked:
        return f"{target.version} blocks upgrades from {current} ({', '.join(blocked)}); upgrade to an intermediate version first."
    allowed_from = rules.get("from") or []
    if not any(versions.satisfies(current, r) for r in allowed_from):
        return f"{target.version} can be reached only from {', '.join(allowed_from) or 'a fresh install'}, not from {current}."
    return None


def all_versions(app: Application) -> list[BlueprintVersion]:
    rows = BlueprintVersion.objects.filter(blueprint_id=app.blueprint_version.blueprint_id)
    return sorted(rows.select_related("blueprint"), key=lambda v: versions.SortKey(v.version))


def upgrade_targets(app: Application) -> list[BlueprintVersion]:
    current = versions.SortKey(app.version)
    found = [v for v in all_versions(app) if versions.SortKey(v.version) > current]
    return [v for v in reversed(found) if version_problem(app, v) is None]


def downgrade_targets(app: Application) -> list[BlueprintVersion]:
    current = versions.SortKey(app.version)
    found = [v for v in all_versions(app) if versions.SortKey(v.version) < current]
    return [v for v in reversed(found) if version_problem(app, v) is None]


def changelog(app: Application, target: BlueprintVersion) -> list[tuple[str, str]]:
    """(version, notes) of what a move to `target` brings (upgrade) or undoes (downgrade)."""
    low, high = sorted([versions.SortKey(app.version), versions.SortKey(target.version)])
    between = [v for v in all_versions(app) if low < versions.SortKey(v.version) <= high]
    return [(v.version, str(v.spec.get("changelog") or "No notes.")) for v in reversed(between)]


def check_dependencies(app: Application, version: BlueprintVersion, values: dict[str, Any]) -> None:
    """Every dependency `version` needs with these values is installed, in range, and offers
    what its wiring reads."""
    for dep in version.depends:
        alias = wiring.alias_of(dep)
        if not when.evaluate(dep.get("when"), values):
            continue
        name = app.dependencies.get(alias)
        if not name:
            raise ValidationError(
                {
                    f"dependencies.{alias}": f"{version} needs {dep['blueprint']} {dep['range']} as “{alias}”; install it first and reinstall, or change the values."
                }
            )
        dep_app = (
            Application.objects.filter(environment=app.environment, name=name)
            .select_related("blueprint_version__blueprint")
            .first()
        )
        if dep_app is None or not versions.satisfies(dep_app.version, dep["range"]):
            found = dep_app.version if dep_app else "missing"
            raise ValidationError(
                {
                    f"dependencies.{alias}": f"{version} needs {dep['blueprint']} {dep['range']}; “{name}” is {found}. Upgrade it first."
                }
            )
        missing = wiring.missing_outputs(
            dep, set(dep_app.blueprint_version.spec.get("outputs") or {})
        )
        if missing:
            raise ValidationError(
                {
                    f"dependencies.{alias}": f"{dep_app.blueprint_version} offers no {', '.join(missing)}, which {version} wires."
                }
            )


def version_named(app: Application, version: str) -> BlueprintVersion:
    target = (
        BlueprintVersion.objects.filter(
            blueprint_id=app.blueprint_version.blueprint_id, version=version
        )
        .select_related("blueprint")
        .first()
    )
    if target is None:
        raise ValidationError({"version": f"{app.blueprint.name} has no version “{version}”."})
    return target


def with_version(app: Application, version: str) -> Application:
    _editable(app)
    target = version_named(app, version)
    if problem := version_problem(app, target):
        raise ValidationError({"version": problem})
    values = schema_form.validate(target.config_schema, dict(app.values))
    check_dependencies(app, target, values)
    return _copy(app, blueprint_version=target, values=values)


def upgrade(*, by: Actor, app: Application, version: str) -> Application:
    """Move to another version the Blueprint allows: an upgrade, or a downgrade it permits."""
    changed = with_version(app, version)
    older = versions.SortKey(version) < versions.SortKey(app.version)
    action = "applications.downgrade" if older else "applications.upgrade"
    return _apply(by=by, app=app, changed=changed, action=action)


# --- rollback ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    """A configuration of the Application that a commit delivered (numbered from 1)."""

    number: int
    commit: str
    action: str
    at: datetime
    actor: str
    state: dict[str, Any]

    @property
    def short(self) -> str:
        return self.commit[:10]


def _revision_keys(app: Application) -> list[tuple[int, str, Any]]:
    """Oldest first: (action event id, commit, when) of each configuration a commit delivered,
    without reading the configurations themselves (one row per revision is read in full only
    where it is shown or restored)."""
    commits = AuditEvent.objects.filter(
        target_type=Application._meta.label_lower,
        target_id=str(app.pk),
        action="applications.commit",
    ).order_by("created_at", "id")
    by_commit: dict[str, int] = {}
    for after in commits.values_list("after", flat=True):
        after = after or {}
        if after.get("commit") and after.get("audit_event"):
            by_commit[after["commit"]] = max(
                by_commit.get(after["commit"], 0), after["audit_event"]
            )
    delivered = (
        AuditEvent.objects.filter(pk__in=by_commit.values())
        .exclude(action="applications.uninstall")
        .exclude(Q(after__isnull=True) | Q(after={}))
        .values_list("pk", "created_at")
    )
    when = dict(delivered)
    found = [
        (event_id, sha, when[event_id]) for sha, event_id in by_commit.items() if event_id in when
    ]
    found.sort(key=lambda key: (key[2], key[0]))
    return found


def _revision(number: int, event: AuditEvent, sha: str) -> Revision:
    return Revision(
        number, sha, event.action, event.created_at, event.actor_repr, dict(event.after or {})
    )


def revisions(app: Application) -> list[Revision]:
    """Oldest first: each distinct commit of the Application with the configuration it held
    (the snapshot of the latest portal action that commit delivered)."""
    keys = _revision_keys(app)
    events = AuditEvent.objects.defer("before").in_bulk([event_id for event_id, _, _ in keys])
    return [
        _revision(n, events[event_id], sha) for n, (event_id, sha, _) in enumerate(keys, start=1)
    ]


def revision(app: Application, number: int) -> tuple[Revision | None, int]:
    """Revision `number` of the Application (None when it has none such) and the number of the
    current one; the configuration of that revision alone is read."""
    keys = _revision_keys(app)
    if not 1 <= number <= len(keys):
        return None, len(keys)
    event_id, sha, _ = keys[number - 1]
    return _revision(number, AuditEvent.objects.defer("before").get(pk=event_id), sha), len(keys)


def with_rollback(app: Application, number: int) -> tuple[Application, Revision]:
    """The Application as revision `number` had it (version, values, size, placement,
    dependencies). A version change must be one the Blueprint allows."""
    _editable(app)
    found, current = revision(app, number)
    if found is None:
        raise ValidationError({"revision": f"{app.name} has no revision {number}."})
    if number == current:
        raise ValidationError({"revision": f"Revision {number} is the current one."})
    state = found.state
    same = str(state.get("version")) == app.version  # the usual case: no version to look up
    target = app.blueprint_version if same else version_named(app, str(state.get("version")))
    if target.pk != app.blueprint_version_id and (problem := version_problem(app, target)):
        raise ValidationError({"revision": f"Revision {number} ran {target.version}: {problem}"})
    changed = _copy(
        app,
        blueprint_version=target,
        values=dict(state.get("values") or {}),
        size=state.get("size", app.size),
        placement=state.get("placement", app.placement),
        regions=list(state.get("regions") or app.regions),
        dependencies=dict(state.get("dependencies") or {}),
    )
    for alias, name in changed.dependencies.items():
        exists = Application.objects.filter(environment=app.environment, name=name).exclude(
            state=AppState.UNINSTALLING
        )
        if not exists.exists():
            raise ValidationError(
                {
                    "revision": f"Revision {number} used “{name}” as {alias}; it is no longer installed."
                }
            )
    return changed, found


def rollback(*, by: Actor, app: Application, revision: int) -> Application:
    """A new commit restoring the files of an earlier revision, audited as a rollback."""
    changed, _found = with_rollback(app, revision)
    return _apply(by=by, app=app, changed=changed, action="applications.rollback")


# --- uninstall ---------------------------------------------------------------------------------


def unused_dependencies(app: Application) -> list[Application]:
    """The dependencies (and theirs) that nothing but `app` and each other would still use."""
    env_apps = {
        a.name: a
        for a in Application.objects.filter(environment_id=app.environment_id)
        .exclude(state=AppState.UNINSTALLING)
        .select_related(*RELATED)
    }
    users: dict[str, set[str]] = {name: set() for name in env_apps}
    for other in env_apps.values():
        for name in (other.dependencies or {}).values():
            users.setdefault(name, set()).add(other.name)
    going = {app.name}
    candidates = list((app.dependencies or {}).values())
    found: list[Application] = []
    while candidates:
        name = candidates.pop(0)
        if name in going or name not in env_apps or not users[name] <= going:
            continue
        going.add(name)
        found.append(env_apps[name])
        candidates += list((env_apps[name].dependencies or {}).values())
    return found


def uninstall(
    *, by: Actor, app: Application, remove_dependencies: Iterable[str] = ()
) -> list[Application]:
    """Uninstall `app`, and with it the chosen dependencies nothing else uses (one transaction,
    each audited); refused while other Applications depend on it."""
    if app.state == AppState.UNINSTALLING:
        return [app]
    users = services.dependents(app)
    if users:
        raise ConflictError(
            {
                "name": f"{', '.join(users)} depend{'s' if len(users) == 1 else ''} on {app.name}; uninstall {'it' if len(users) == 1 else 'them'} first."
            }
        )
    wanted = list(dict.fromkeys(remove_dependencies))
    unused = {a.name: a for a in unused_dependencies(app)}
    stray = [name for name in wanted if name not in unused]
    if stray:
        raise ValidationError(
            {"remove_dependencies": f"Not an unused dependency of {app.name}: {', '.join(stray)}."}
        )
    going = [app, *[unused[name] for name in wanted]]
    with transaction.atomic():
        for target in going:
            locked = Application.objects.select_for_update().get(pk=target.pk)
            before = services.snapshot(target)
            locked.state = AppState.UNINSTALLING
            locked.save(update_fields=["state", "updated_at"])
            target.state = AppState.UNINSTALLING
            services.schedule_delivery(
                target, by=by, action="applications.uninstall", before=before
            )
    return going
