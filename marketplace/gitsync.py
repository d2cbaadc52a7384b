"""Git → portal: an Application's repo is a surface as good as the form.

A push to the Application's branch (reported by the Gitea webhook, or found by the periodic
reconcile when a hook was lost) is read back:

- only files the portal owns count (`manifests.owned_paths`); other files are never touched;
- `values.yaml` (the configuration) is validated like the form's values: the Blueprint's
  configSchema, application references, dependencies. Valid → adopted: the Application's values
  change, audited as `applications.git_change` by "<pusher> via Git", and the rendered files follow
  in a portal commit. Invalid → the Application shows "Git holds an invalid change" with each
  error, and the portal writes nothing to that branch until Git is fixed or someone here chooses
  to replace it;
- a rendered file edited by hand is an invalid change too (the next render would undo it);
- when the portal holds a change of its own not yet committed and Git changed the values too, it
  is a conflict: both versions are shown and a person picks one.

The portal's own writes go through the drift guard of `gitops.sync` (base = the owned files as
last written or read), so they never overwrite a newer Git change either.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, cast

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import audit, outbox
from core.actors import Actor
from core.errors import ConflictError
from gitops import hooks, naming
from gitops.backend import GitError, blob_sha
from gitops.sync import backend

from . import changes, manifests, plans, schema_form, services
from .models import Application, AppState, GitSync, GitSyncState

log = logging.getLogger(__name__)

READ_BACK_TASK = "marketplace.tasks.read_back_task"
RELATED = ("blueprint_version__blueprint", "environment__organization")
GENERATED_EDIT = (
    "This file is rendered by the portal (from values.yaml, the size and the placement); an edit "
    "here would be undone by the next render. Revert it, or put the change in a file of your own "
    "beside it (the portal keeps files it does not own)."
)

UNCHANGED, ADOPTED, INVALID, CONFLICT = "unchanged", "adopted", "invalid", "conflict"


def state_of(app: Application) -> GitSync:
    """What the portal knows of the app's branch (unsaved and empty before the first look: a
    read writes nothing)."""
    return GitSync.objects.filter(application_id=app.pk).first() or GitSync(application=app)


def where(app: Application) -> tuple[str, str, str]:
    env = app.environment
    return env.organization.slug, app.name, naming.branch_for(env.env_type)


def errors_of(exc: ValidationError) -> list[dict[str, str]]:
    if hasattr(exc, "error_dict"):
        return [
            {"path": path, "message": message}
            for path, messages in exc.message_dict.items()
            for message in messages
        ]
    return [{"path": "values", "message": m} for m in exc.messages]


def check_values(app: Application, text: str | None) -> tuple[dict[str, Any] | None, list[dict]]:
    """The configuration `text` holds, validated like the form; or the errors (field paths)."""
    path = manifests.VALUES_FILE
    if text is None:
        return None, [
            {"path": path, "message": "values.yaml was deleted; it holds the configuration."}
        ]
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [{"path": path, "message": f"Not valid YAML{line}: {problem}"}]
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        return None, [{"path": "values", "message": "values.yaml must hold a mapping."}]
    schema = app.blueprint_version.config_schema
    try:
        values = schema_form.validate(schema, loaded)
        plans.check_application_refs(app.environment, schema, values)
        changes.check_dependencies(app, app.blueprint_version, values)
    except ValidationError as exc:
        return None, with_lines(text, errors_of(exc))
    return values, []


def with_lines(text: str, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each error with the line of values.yaml its field path points at (when it is there)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return errors
    out = []
    for error in errors:
        node, line = root, None
        for key in error["path"].split(".")[1:]:
            if not isinstance(node, yaml.MappingNode):
                break
            pair = next((p for p in node.value if getattr(p[0], "value", None) == key), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        out.append({**error, "line": line} if line else error)
    return out


def committed_text(app: Application) -> str:
    """values.yaml as the Application's branch holds it (rendered when Git cannot be read)."""
    owner, repo, branch = where(app)
    try:
        raw = backend().read_file(owner, repo, branch, manifests.VALUES_FILE)
    except GitError:
        raw = None
    return raw.decode("utf-8", "replace") if raw is not None else manifests.values_text(app)


def _pusher(app: Application, head: str) -> str:
    owner, repo, branch = where(app)
    found = hooks.pusher_of(owner, repo, branch, head)
    if found:
        return found
    try:
        info = backend().head_commit(owner, repo, branch)
    except GitError:
        info = None
    return info.author if info is not None and info.sha == head else "someone"


def read_back(
    app: Application,
    *,
    keep_git: bool = False,
    by: Actor = None,
    action: str = "",
    extra: dict[str, Any] | None = None,
) -> str:
    """Read the Application's branch and act on what changed in the files the portal owns since
    it last wrote or read them. `keep_git`: a person chose Git's version over a pending portal
    change (no conflict then). `action`: the audit action of an adoption a person caused (a
    merged promotion). Returns unchanged, adopted, invalid or conflict."""
    owner, repo, branch = where(app)
    git = backend()
    try:
        tree = git.read_tree(owner, repo, branch, "")
    except GitError:
        return UNCHANGED  # no repo yet: nothing was pushed
    if tree.head is None:
        return UNCHANGED
    desired = manifests.app_tree(app)
    owned = desired.owned_blobs(tree.blobs)
    with transaction.atomic():
        locked = Application.objects.select_for_update().select_related(*RELATED).get(pk=app.pk)
        if locked.state == AppState.UNINSTALLING:
            return UNCHANGED
        gs = GitSync.objects.select_for_update().filter(application=locked).first()
        if gs is None or not gs.head:  # first look (installed before Git was read back)
            GitSync.objects.update_or_create(
                application=locked,
                defaults={"head": tree.head, "blobs": owned, "base_values": locked.values},
            )
            return UNCHANGED
        if gs.head == tree.head and not keep_git:
            return UNCHANGED
        changed = sorted(p for p in set(owned) | set(gs.blobs) if owned.get(p) != gs.blobs.get(p))
        rendered = {p: blob_sha(t.encode()) for p, t in desired.files.items()}
        errors = [
            {"path": p, "message": GENERATED_EDIT}
            for p in changed
            if p != manifests.VALUES_FILE and owned.get(p) != rendered.get(p)
        ]
        values: dict[str, Any] | None = None
        text: str | None = None
        if manifests.VALUES_FILE in changed:
            raw = git.read_file(owner, repo, branch, manifests.VALUES_FILE)
            text = raw.decode("utf-8", "replace") if raw is not None else None
            values, value_errors = check_values(locked, text)
            errors += value_errors
        gs.checked_at = timezone.now()
        pusher = _pusher(locked, tree.head)
        if errors:
            return _flag(locked, gs, tree.head, pusher, errors, text)
        if values is None or values == locked.values:
            # nothing to adopt: unowned files, the portal's own commit, or the same values
            gs.head, gs.blobs, gs.state = tree.head, owned, GitSyncState.IN_SYNC
            gs.base_values = locked.values if values is not None else gs.base_values
            gs.errors, gs.git_values, gs.git_text, gs.commit = [], None, "", ""
            gs.save()
            return UNCHANGED
        portal_pending = gs.base_values is not None and locked.values != gs.base_values
        if portal_pending and not keep_git:
            return _conflict(locked, gs, tree.head, pusher, values, text or "")
        before = services.snapshot(locked)
        locked.values = values
        locked.state = AppState.PENDING
        locked.save(update_fields=["values", "state", "updated_at"])
        gs.head, gs.blobs, gs.base_values = tree.head, owned, values
        gs.state, gs.errors, gs.git_values, gs.git_text = GitSyncState.IN_SYNC, [], None, ""
        gs.commit, gs.pusher = tree.head, pusher
        gs.save()
        by_person = keep_git or bool(action)
        action = action or ("applications.git_keep" if keep_git else "applications.git_change")
        services.schedule_delivery(
            locked,
            by=by,
            action=action,
            before=before,
            actor_repr="" if by_person else f"{pusher} via Git",
            extra={"via": "git", "commit": tree.head, "pusher": pusher, **(extra or {})},
        )
    return ADOPTED


def _flag(
    app: Application,
    gs: GitSync,
    head: str,
    pusher: str,
    errors: list[dict[str, str]],
    text: str | None,
) -> str:
    """Git holds an invalid change: record it (once per commit); the base stays, so the portal
    keeps refusing to overwrite it."""
    after = {"errors": errors}
    return _hold(app, gs, GitSyncState.INVALID, head, pusher, text or "", None, None, after)


def _conflict(
    app: Application, gs: GitSync, head: str, pusher: str, values: dict[str, Any], text: str
) -> str:
    Application.objects.filter(pk=app.pk, state=AppState.COMMITTING).update(state=AppState.PENDING)
    before = {"values": app.values, "via": "portal"}
    return _hold(app, gs, GitSyncState.CONFLICT, head, pusher, text, values, before, {})


def _hold(
    app: Application,
    gs: GitSync,
    state: GitSyncState,
    head: str,
    pusher: str,
    text: str,
    values: dict[str, Any] | None,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> str:
    """Keep a Git change the portal cannot take in (invalid, or in conflict) on show; audited
    once per commit. The base is not moved: the portal keeps refusing to overwrite it."""
    errors = after.get("errors", [])
    # the same held change seen again at a later commit (a portal commit of other files, or a
    # push of unrelated files): still the first commit's and pusher's
    same = gs.state == state and gs.git_text == text and gs.errors == errors
    new = not same
    if new:
        gs.commit, gs.pusher = head, pusher
    gs.head, gs.state = head, state
    gs.errors, gs.git_values, gs.git_text = errors, values, text
    gs.save()
    if new:
        if values is not None:
            after = {**after, "values": values}
        audit.record(
            f"applications.git_{state.value}",
            actor=None,
            actor_repr=f"{pusher} via Git",
            target=app,
            org_slug=app.environment.organization.slug,
            before=before,
            after={**after, "via": "git", "commit": head, "pusher": pusher},
        )
    _publish(app)
    return INVALID if state == GitSyncState.INVALID else CONFLICT


def _publish(app: Application) -> None:
    app_id = app.pk
    transaction.on_commit(lambda: services._refresh_status(app_id))


# --- resolving ------------------------------------------------------------------------------------


def keep_git(*, by: Actor, app: Application) -> str:
    """A person chose Git's values over the portal's pending change: adopt them (audited)."""
    gs = state_of(app)
    if gs.state != GitSyncState.CONFLICT:
        raise ConflictError({"git": "There is no conflict with Git to resolve."})
    outcome = read_back(app, keep_git=True, by=by)
    if outcome != ADOPTED:
        raise ConflictError({"git": "Git's version cannot be adopted any more; reload the page."})
    return outcome


def use_portal(*, by: Actor, app: Application) -> Application:
    """Replace Git's change (invalid, or in conflict) with the portal's configuration: an explicit,
    audited overwrite. A push landing after this is guarded against again."""
    if not state_of(app).blocked:
        raise ConflictError({"git": "Git holds no change to replace."})
    owner, repo, branch = where(app)
    try:
        tree = backend().read_tree(owner, repo, branch, "")
    except GitError as exc:
        raise ConflictError({"git": f"Git cannot be read now: {exc}"}) from None
    with transaction.atomic():
        locked = Application.objects.select_for_update().select_related(*RELATED).get(pk=app.pk)
        gs = GitSync.objects.select_for_update().get(application=locked)
        if gs.state == GitSyncState.IN_SYNC:
            raise ConflictError({"git": "Git holds no change to replace."})
        if tree.head != gs.head:
            raise ConflictError({"git": "Git moved again since this was shown; look again."})
        before = {"via": "git", "commit": gs.commit, "pusher": gs.pusher, "errors": gs.errors}
        if gs.git_values is not None:
            before["values"] = gs.git_values
        gs.blobs = manifests.app_tree(locked).owned_blobs(tree.blobs)
        gs.base_values = locked.values
        gs.state, gs.errors, gs.git_values, gs.git_text = GitSyncState.IN_SYNC, [], None, ""
        gs.save()
        locked.state = AppState.PENDING
        locked.save(update_fields=["state", "updated_at"])
        services.schedule_delivery(
            locked,
            by=by,
            action="applications.git_overwrite",
            before=before,
            extra={"via": "portal", "commit": before["commit"]},
        )
    return locked


def ensure_in_sync(app: Application) -> None:
    """Portal changes wait while Git holds a change the portal has not taken in. (The branch
    state read with the row, as the API does, is not read again.)"""
    related = Application.git_sync.related
    gs: GitSync | None
    if related.is_cached(app):
        gs = cast(GitSync | None, related.get_cached_value(app))
    else:
        gs = GitSync.objects.filter(application_id=app.pk).first()
    if gs is not None and gs.blocked:
        label = GitSyncState(gs.state).label
        raise ConflictError(
            {"git": f"{label} (commit {gs.commit[:10]} by {gs.pusher}); resolve it first."}
        )


# --- the portal's side: delivery, webhook, reconcile --------------------------------------------


def desired_for_delivery(
    app: Application,
    written: str | None = None,
    *,
    enforce: bool = False,
    gs: GitSync | None = None,
    inputs: manifests.Inputs | None = None,
) -> Any:
    """The app tree as delivery commits it: guarded by what the portal last knew of the branch
    (`gs`, when the caller read it already). values.yaml is `written` (the editor's text) or
    Git's own text when either says the same as the Application's values; otherwise it is
    rendered. `enforce` (a suspended Organization): the rendered files are written whatever Git
    holds, and Git's values.yaml is left as it is."""
    gs = gs or state_of(app)
    owner, repo, branch = where(app)
    if enforce:  # values.yaml is neither written nor deleted: Git's stays, whatever it holds
        desired = manifests.app_tree(app, inputs=inputs)
        files = {p: t for p, t in desired.files.items() if p != manifests.VALUES_FILE}
        owned = tuple(p for p in desired.owned if p != manifests.VALUES_FILE)
        return replace(desired, files=files, owned=owned)
    current = None
    if written is not None and manifests.config_of(app, written) == app.values:
        current = written
    elif gs.head:
        try:
            raw = backend().read_file(owner, repo, branch, manifests.VALUES_FILE)
        except GitError:
            raw = None
        current = raw.decode("utf-8", "replace") if raw is not None else None
    guarded = bool(gs.head) and app.state != AppState.UNINSTALLING
    return manifests.app_tree(
        app, current_values=current, base=gs.blobs if guarded else None, inputs=inputs
    )


def delivered(app: Application, head: str | None, blobs: dict[str, str]) -> None:
    """After the portal's commit (or a no-op sync): that is now the base. One statement when
    the row exists (every delivery but the first)."""
    if not head:
        return
    fields = {
        "head": head,
        "blobs": blobs,
        "base_values": app.values,
        "state": GitSyncState.IN_SYNC,
        "errors": [],
        "git_values": None,
        "git_text": "",
    }
    if not GitSync.objects.filter(application=app).update(**fields):  # the first: insert
        GitSync.objects.bulk_create(  # one statement, even against a concurrent first
            [GitSync(application=app, **fields)],
            update_conflicts=True,
            unique_fields=["application"],
            update_fields=list(fields),
        )


def on_push(push: hooks.Push) -> None:
    """A verified push webhook: read back each Application living on that branch (queued)."""
    for app in Application.objects.filter(
        environment__organization__slug=push.owner, name=push.repo
    ).select_related("environment"):
        if app.state == AppState.UNINSTALLING:
            continue
        if naming.branch_for(app.environment.env_type) == push.branch:
            outbox.enqueue(READ_BACK_TASK, app.pk)


def reconcile_all() -> dict[str, int]:
    """Catch pushes whose webhook was lost: compare every Application's branch head with the
    last one the portal saw, and read back those that moved."""
    counts = {UNCHANGED: 0, ADOPTED: 0, INVALID: 0, CONFLICT: 0, "errors": 0}
    git = backend()
    apps = (
        Application.objects.exclude(state=AppState.UNINSTALLING)
        .select_related(*RELATED, "git_sync")
        .order_by("pk")
    )
    for app in apps:
        gs = getattr(app, "git_sync", None)
        owner, repo, branch = where(app)
        try:
            info = git.head_commit(owner, repo, branch)
            if info is None or (gs is not None and gs.head == info.sha):
                counts[UNCHANGED] += 1
                continue
            counts[read_back(app)] += 1
        except GitError as exc:
            log.warning("reconcile of %s/%s@%s failed: %s", owner, repo, branch, exc)
            counts["errors"] += 1
    return counts


def connect() -> None:
    hooks.register_push_handler(on_push)
