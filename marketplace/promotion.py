"""Promotion between Environments under an EnvironmentPolicy.

"Promote to staging/prod" carries an Application's configuration (its `values.yaml`, the base)
from its Environment's branch to the next higher Environment's (`develop` → `staging` → `main`)
as a pull request: on Gitea a branch `promote/<from>-to-<to>-<id>` made from the target branch
with the source's values.yaml on top (the base), so the PR's diff is exactly what is promoted and
placement (`overlays/<env>/`) stays per Environment. The PR is opened by a task through the outbox,
retry-safe by its row (`open_pull`): the promotion is recorded at once, the PR follows. The target Environment's policy
(`policies/{org}-{env}-policy.yaml` in catalyst-config, edited here and committed) is evaluated
rule by rule:

- `pr-required`: `minApprovals` approvals by `approvers` (`users`: usernames; `groups`: the
  single sign-on groups of a user's identity), given here or as Gitea reviews (read back); the
  person who opened the promotion does not count;
- `soak`: the source Application Ready on the promoted revision for `duration` (`30m`, `2h`, `1d`);
- `change-window`: now inside a window opening at each time the `cron` expression (5 fields)
  names, lasting `duration`.

Merging is refused while a blocking rule fails (`blocking: false` rules are advisory). A merged
promotion is read back into the target Application (audited `applications.promote`, on its
timeline), exactly like any push: the policy applies whichever surface opened the PR.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import audit, outbox
from core.actors import Actor, person
from core.errors import ConflictError
from core.models import AuditEvent
from gitops import delivery, hooks, naming
from gitops.backend import GitError
from gitops.sync import Desired, backend, sync
from gitops.validation import validate_manifest
from orgs.models import Environment

from . import gitsync, manifests, services
from .models import (
    Application,
    AppState,
    EnvironmentPolicy,
    Promotion,
    PromotionApproval,
    PromotionState,
)

log = logging.getLogger(__name__)
ENV_ORDER = ["dev", "stg", "prod"]
POLICY_TASK = "marketplace.tasks.sync_policy_task"
OPEN_PULL_TASK = "marketplace.tasks.open_promotion_task"
MAX_WINDOW = timedelta(days=7)
_DURATION = re.compile(r"^([0-9]{1,4})(m|h|d)$")


# --- the policy ----------------------------------------------------------------------------------


def duration(text: str) -> timedelta:
    found = _DURATION.match(str(text))
    if not found:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1d")
    amount, unit = int(found.group(1)), found.group(2)
    return timedelta(minutes=amount) * {"m": 1, "h": 60, "d": 1440}[unit]


class Cron:
    """A 5-field cron expression: minute hour day-of-month month day-of-week (0 or 7 = Sunday);
    `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n`, `a-b/n`."""

    BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))

    def __init__(self, expression: str):
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"{expression!r} needs 5 fields (minute hour day month weekday)")
        self.sets = [
            self._field(f, lo, hi) for f, (lo, hi) in zip(fields, self.BOUNDS, strict=True)
        ]
        if 7 in self.sets[4]:
            self.sets[4] = (self.sets[4] - {7}) | {0}
        self.any_day, self.any_weekday = fields[2] == "*", fields[4] == "*"

    @staticmethod
    def _field(spec: str, lo: int, hi: int) -> set[int]:
        out: set[int] = set()
        for part in spec.split(","):
            base, _, step_text = part.partition("/")
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = lo, hi
            elif "-" in base:
                start, end = (int(x) for x in base.split("-", 1))
            else:
                start = end = int(base)
            if start < lo or end > hi or start > end or step < 1:
                raise ValueError(f"{part!r} is outside {lo}-{hi}")
            out.update(range(start, end + 1, step))
        return out

    def matches(self, at: datetime) -> bool:
        minute, hour, day, month, weekday = self.sets
        if at.minute not in minute or at.hour not in hour or at.month not in month:
            return False
        day_ok, weekday_ok = at.day in day, (at.weekday() + 1) % 7 in weekday
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def open_since(self, now: datetime, length: timedelta) -> datetime | None:
        """The start of the window (cron time + `length`) that `now` falls in, if any."""
        at = now.replace(second=0, microsecond=0)
        for _ in range(int(length.total_seconds() // 60) + 1):
            if at + length > now and self.matches(at):
                return at
            at -= timedelta(minutes=1)
        return None


def policy_path(env: Environment) -> str:
    return f"policies/{env.name}-policy.yaml"


def policy_document(env: Environment, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "catalyst.openova.io/v1",
        "kind": "EnvironmentPolicy",
        "metadata": {
            "name": f"{env.name}-policy",
            "labels": naming.labels(
                organization=env.organization.slug, environment=env.name, env_type=env.env_type
            ),
        },
        "spec": {"organization": env.organization.slug, "environment": env.name, "rules": rules},
    }


def check_rules(env: Environment, rules: Any) -> list[dict[str, Any]]:
    """The rules, or ValidationError with field paths (`rules.0.minApprovals`)."""
    if not isinstance(rules, list):
        raise ValidationError({"rules": ["Rules must be a list."]})
    problems: dict[str, list[str]] = {}
    for line in validate_manifest(policy_document(env, rules)):
        where, _, message = line.partition(": ")
        path = where.removeprefix("spec.") if where.startswith("spec.rules") else "rules"
        problems.setdefault(path, []).append(message)
    names = [r.get("name") for r in rules if isinstance(r, dict)]
    if len(set(names)) != len(names):
        problems.setdefault("rules", []).append("Each rule needs a name of its own.")
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict) or problems:
            continue
        try:
            if "duration" in rule and duration(rule["duration"]) > MAX_WINDOW:
                raise ValueError("at most 7d")
            if rule.get("type") == "change-window":
                Cron(str(rule["cron"]))
        except ValueError as exc:
            key = (
                "cron" if rule.get("type") == "change-window" and "cron" in str(exc) else "duration"
            )
            problems.setdefault(f"rules.{index}.{key}", []).append(str(exc))
    if problems:
        raise ValidationError(problems)
    return rules


def policy_rules(env: Environment) -> list[dict[str, Any]]:
    found = EnvironmentPolicy.objects.filter(environment=env).first()
    return list(found.rules) if found else []


def set_policy(*, by: Actor, env: Environment, rules: Any) -> EnvironmentPolicy:
    """Change the Environment's policy: audited, committed as its EnvironmentPolicy CR."""
    rules = check_rules(env, rules)
    with transaction.atomic():
        policy, created = EnvironmentPolicy.objects.select_for_update().get_or_create(
            environment=env
        )
        before = None if created else {"rules": policy.rules}
        policy.rules = rules
        policy.save()
        event = audit.record(
            "environments.policy",
            actor=by,
            target=env,
            org_slug=env.organization.slug,
            before=before,
            after={"rules": rules},
        )
        outbox.enqueue(POLICY_TASK, policy.pk, actor=by, audit_event=event)
        for app_id in (
            Application.objects.filter(environment=env)
            .exclude(state=AppState.UNINSTALLING)
            .values_list("pk", flat=True)
        ):  # their CODEOWNERS name the approvers
            outbox.enqueue(services.SYNC_TASK, app_id, actor=by)
    return policy


def deliver_policy(*, policy_id: int, item: Any) -> str | None:
    policy = (
        EnvironmentPolicy.objects.select_related("environment__organization")
        .filter(pk=policy_id)
        .first()
    )
    if policy is None:
        return None
    env = policy.environment
    owner, repo, branch = naming.config_repo()
    path = policy_path(env)
    desired = Desired(
        owner=owner,
        repo=repo,
        branch=branch,
        root="policies/",
        files={path: manifests.dump(policy_document(env, policy.rules))},
        owned=(path,),
    )
    author = delivery.author_for(item.actor)
    message = delivery.commit_message(item, f"policy of {env.name}")
    return delivery.deliver(policy, lambda: sync(desired, author=author, message=message).head)


# --- evaluating a promotion --------------------------------------------------------------------


@dataclass(frozen=True)
class RuleResult:
    name: str
    type: str
    blocking: bool
    passed: bool
    detail: str


def _approvers(rule: dict[str, Any], user: Any) -> bool:
    wanted = rule.get("approvers") or {}
    if user.get_username() in (wanted.get("users") or []):
        return True
    groups = set(wanted.get("groups") or [])
    if not groups:
        return False
    mine = user.oidc_identities.filter(lost_at__isnull=True).values_list("groups", flat=True)
    return any(groups & set(found or []) for found in mine)


def approvals(promotion: Promotion) -> list[tuple[Any, str]]:
    """(user, where) of each approval: given here, or an APPROVED review in Gitea whose login is
    a portal username."""
    found = [(a.user, "portal") for a in promotion.approvals.select_related("user")]
    git = backend()
    reviews = getattr(git, "pull_reviews", None)
    if promotion.pr_number and reviews is not None:
        owner, repo, _branch = gitsync.where(promotion.target)
        try:
            approved = {
                r.login for r in reviews(owner, repo, promotion.pr_number) if r.state == "APPROVED"
            }
        except GitError:
            approved = set()
        from django.contrib.auth import get_user_model

        seen = {u.pk for u, _ in found}
        for user in get_user_model().objects.filter(username__in=approved):
            if user.pk not in seen:
                found.append((user, "gitea"))
    return found


def _ready_since(app: Application, revision: str) -> datetime | None:
    if app.state != AppState.READY or not revision or revision not in app.observed_revision:
        return None
    event = (
        AuditEvent.objects.filter(
            target_type=Application._meta.label_lower,
            target_id=str(app.pk),
            action="applications.reconcile",
            after__state="ready",
        )
        .order_by("-created_at", "-id")
        .first()
    )
    return event.created_at if event else None


def evaluate(promotion: Promotion, now: datetime | None = None) -> list[RuleResult]:
    now = now or timezone.now()
    results = []
    for rule in policy_rules(promotion.target.environment):
        kind, blocking = rule["type"], bool(rule.get("blocking", True))
        if kind == "pr-required":
            counted = [
                (u, where)
                for u, where in approvals(promotion)
                if u.pk != promotion.opened_by_id and _approvers(rule, u)
            ]
            need = int(rule["minApprovals"])
            who = ", ".join(f"{u.get_username()} ({where})" for u, where in counted) or "none yet"
            detail = f"{len(counted)} of {need} approvals from {_describe(rule)}: {who}"
            results.append(RuleResult(rule["name"], kind, blocking, len(counted) >= need, detail))
        elif kind == "soak":
            need_for = duration(rule["duration"])
            if promotion.source is None:
                detail = f"{promotion.branch} is not an Environment's branch: nothing soaked there"
                results.append(RuleResult(rule["name"], kind, blocking, False, detail))
                continue
            since = _ready_since(promotion.source, promotion.source_revision)
            env = promotion.source.environment.name
            if since is None:
                detail = f"{env} is not Ready on {promotion.source_revision[:10]}"
                passed = False
            else:
                passed = now - since >= need_for
                detail = f"{env} Ready on {promotion.source_revision[:10]} since {since:%Y-%m-%d %H:%M} UTC (needs {rule['duration']})"
            results.append(RuleResult(rule["name"], kind, blocking, passed, detail))
        elif kind == "change-window":
            opened = Cron(rule["cron"]).open_since(now, duration(rule["duration"]))
            detail = (
                f"inside the window opened {opened:%Y-%m-%d %H:%M} UTC ({rule['cron']}, {rule['duration']})"
                if opened
                else f"outside the change window ({rule['cron']}, for {rule['duration']})"
            )
            results.append(RuleResult(rule["name"], kind, blocking, opened is not None, detail))
    return results


def _describe(rule: dict[str, Any]) -> str:
    wanted = rule.get("approvers") or {}
    parts = [f"users {', '.join(wanted['users'])}"] if wanted.get("users") else []
    if wanted.get("groups"):
        parts.append(f"groups {', '.join(wanted['groups'])}")
    return " or ".join(parts) or "nobody"


def origin(promotion: Promotion) -> str:
    """Where the promoted configuration comes from: an Environment, else the PR's branch."""
    return promotion.source.environment.name if promotion.source else promotion.branch


def blocking_failures(results: list[RuleResult]) -> list[RuleResult]:
    return [r for r in results if r.blocking and not r.passed]


def can_approve(promotion: Promotion, user: Any) -> bool:
    if promotion.state != PromotionState.OPEN or user.pk == promotion.opened_by_id:
        return False
    rules = [r for r in policy_rules(promotion.target.environment) if r["type"] == "pr-required"]
    return any(_approvers(rule, user) for rule in rules)


# --- opening, approving, merging ---------------------------------------------------------------


def target_of(app: Application) -> Application | None:
    """The same Application in the next higher Environment of the Organization."""
    if app.environment.env_type not in ENV_ORDER:
        return None
    higher = ENV_ORDER[ENV_ORDER.index(app.environment.env_type) + 1 :]
    found = (
        Application.objects.filter(
            environment__organization_id=app.environment.organization_id,
            environment__env_type__in=higher,
            name=app.name,
        )
        .exclude(state=AppState.UNINSTALLING)
        .select_related(*gitsync.RELATED)
    )
    return min(found, key=lambda a: ENV_ORDER.index(a.environment.env_type), default=None)


def _read(app: Application) -> tuple[str, str]:
    owner, repo, branch = gitsync.where(app)
    git = backend()
    info = git.head_commit(owner, repo, branch)
    raw = git.read_file(owner, repo, branch, manifests.VALUES_FILE)
    if info is None or raw is None:
        raise ConflictError({"source": f"{app} has nothing committed to promote yet."})
    return info.sha, raw.decode("utf-8", "replace")


def open_promotion(*, by: Actor, app: Application) -> Promotion:
    """Open a promotion of `app`'s configuration to the next Environment (a PR on Gitea)."""
    target = target_of(app)
    if target is None:
        raise ConflictError(
            {
                "target": f"No higher Environment of {app.environment.organization.slug} runs {app.name}."
            }
        )
    if gitsync.state_of(target).blocked or gitsync.state_of(app).blocked:
        raise ConflictError({"git": "Resolve the change held in Git first."})
    try:
        revision, text = _read(app)
        current = gitsync.committed_text(target)
    except GitError as exc:
        raise ConflictError({"git": f"Git cannot be read now: {exc}"}) from None
    text = text.replace(  # the header of the layout before issue 16 named the Environment
        f"# {app.environment.name}/{app.name}:", f"# {target.environment.name}/{target.name}:", 1
    )
    _values, errors = gitsync.check_values(target, text)
    if errors:
        raise ValidationError({f"target.{e['path']}": [e["message"]] for e in errors})
    if manifests.config_of(target, current) == manifests.config_of(target, text):
        raise ConflictError({"target": f"{target} already has this configuration."})
    diff = "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"a/{target.environment.name}/values.yaml",
            tofile=f"b/{app.environment.name}@{revision[:10]}/values.yaml",
        )
    )
    pulls = hasattr(backend(), "open_pull")  # local repos have none: the promotion is the request
    with transaction.atomic():
        promotion = Promotion.objects.create(
            source=app,
            target=target,
            source_revision=revision,
            text=text,
            diff=diff,
            opened_by=person(by),
        )
        event = audit.record(
            "applications.promote_open",
            actor=by,
            target=target,
            org_slug=target.environment.organization.slug,
            after={"promotion": promotion.pk, "from": app.environment.name, "revision": revision},
        )
        if pulls:  # the pull request is opened by a task (retried until Gitea answers)
            promotion.branch = naming.promotion_branch(
                app.environment.name, target.environment.name, promotion.pk
            )
            promotion.save(update_fields=["branch"])
            outbox.enqueue(OPEN_PULL_TASK, promotion.pk, actor=by, audit_event=event)
    return promotion


def open_pull(*, promotion_id: int, item: Any) -> None:
    """Open the promotion's pull request on Gitea: the branch `promote/<from>-to-<to>-<id>` made
    from the target branch with the promoted values.yaml on top, then the PR. Retry-safe (the
    task runs again for the same outbox row until it succeeds): the branch is made once, the
    values committed once, and a PR that Gitea opened before its answer got lost is found instead
    of asked for again."""
    promotion = (
        Promotion.objects.select_related(*(f"target__{r}" for r in gitsync.RELATED))
        .filter(pk=promotion_id)
        .first()
    )
    if promotion is None or promotion.state != PromotionState.OPEN or promotion.pr_number:
        return
    git: Any = backend()
    target, origin_env = promotion.target, origin(promotion)
    owner, repo, base = gitsync.where(target)
    branch = promotion.branch
    title = f"Promote {target.name} from {origin_env} to {target.environment.name}"
    git.ensure_branch(owner, repo, branch, from_branch=base)
    if git.read_file(owner, repo, branch, manifests.VALUES_FILE) != promotion.text.encode():
        _commit_values(
            promotion, item.actor, branch, f"{title} (revision {promotion.source_revision[:10]})"
        )
    pull = git.find_pull(owner, repo, head=branch, base=base)
    if pull is None:
        opener = item.actor.get_username() if item.actor is not None else "someone"
        body = f"Opened in the portal by {opener}.\n\n```diff\n{promotion.diff}```\n"
        pull = git.open_pull(owner, repo, head=branch, base=base, title=title, body=body)
    Promotion.objects.filter(pk=promotion.pk).update(pr_number=pull.number, pr_url=pull.url)
    promotion.pr_number, promotion.pr_url = pull.number, pull.url
    report(promotion)


def _commit_values(promotion: Promotion, by: Actor, branch: str, message: str) -> str:
    """Commit the promoted values.yaml on `branch` of the target's repo."""
    git = backend()
    owner, repo, _base = gitsync.where(promotion.target)
    head = git.read_tree(owner, repo, branch, "").head
    return git.commit(
        owner,
        repo,
        branch,
        changes={manifests.VALUES_FILE: promotion.text.encode()},
        expected_head=head,
        author=delivery.author_for(by),
        message=message,
    )


def approve(*, by: Actor, promotion: Promotion) -> None:
    if not can_approve(promotion, by):
        raise ConflictError(
            {"approval": "You are not one of this policy's approvers (or you opened it)."}
        )
    with transaction.atomic():
        _approval, created = PromotionApproval.objects.get_or_create(promotion=promotion, user=by)
        if created:
            audit.record(
                "applications.promote_approve",
                actor=by,
                target=promotion.target,
                org_slug=promotion.target.environment.organization.slug,
                after={"promotion": promotion.pk},
            )
    report(promotion)


def merge(*, by: Actor, promotion: Promotion, now: datetime | None = None) -> Promotion:
    """Merge when every blocking rule passes; the target reads the merged values back."""
    if promotion.state != PromotionState.OPEN:
        raise ConflictError({"promotion": "This promotion is not open."})
    failed = blocking_failures(evaluate(promotion, now))
    if failed:
        raise ConflictError({"policy": [f"{r.name} ({r.type}): {r.detail}" for r in failed]})
    target = promotion.target
    owner, repo, branch = gitsync.where(target)
    title = f"Promote {target.name} from {origin(promotion)} (#{promotion.pk})"
    git = backend()
    if promotion.branch and not promotion.pr_number and hasattr(git, "merge_pull"):
        raise ConflictError(
            {"promotion": "Its pull request is still being opened in Gitea; try again shortly."}
        )
    try:
        if promotion.pr_number and hasattr(git, "merge_pull"):
            sha = git.merge_pull(
                owner, repo, promotion.pr_number, title=title, message=promotion.diff[:2000]
            )
        else:  # local repos: the merge is a commit of the promoted file on the target branch
            sha = _commit_values(promotion, by, branch, title)
    except GitError as exc:
        raise ConflictError({"git": f"The merge failed: {exc}"}) from None
    Promotion.objects.filter(pk=promotion.pk).update(
        state=PromotionState.MERGED, merge_sha=sha or "", merged_by=by, merged_at=timezone.now()
    )
    gitsync.read_back(
        target,
        by=by,
        action="applications.promote",
        extra={
            "from": origin(promotion),
            "revision": promotion.source_revision,
            "promotion": promotion.pk,
        },
    )
    promotion.refresh_from_db()
    return promotion


# --- pull requests opened in Gitea, and the policy as a commit status --------------------------

STATUS_CONTEXT = "catalyst/policy"


def report(promotion: Promotion) -> None:
    """Publish the policy's verdict on the PR's head commit (`catalyst/policy`): with branch
    protection requiring it, Gitea refuses a merge the policy blocks, whoever clicks it."""
    git: Any = backend()
    if not promotion.pr_number or not hasattr(git, "set_status"):
        return
    owner, repo, _branch = gitsync.where(promotion.target)
    failed = blocking_failures(evaluate(promotion))
    state = "failure" if failed else "success"
    if promotion.state != PromotionState.OPEN:
        return
    text = (
        "Blocked by " + ", ".join(r.name for r in failed)
        if failed
        else "Every blocking rule passes"
    )
    url = f"{settings.PORTAL_URL.rstrip('/')}/marketplace/promotions/{promotion.pk}/"
    try:
        head = git.get_pull(owner, repo, promotion.pr_number).head_sha or promotion.source_revision
        git.set_status(
            owner,
            repo,
            head,
            state=state,
            context=STATUS_CONTEXT,
            description=text,
            target_url=url if settings.PORTAL_URL else "",
        )
    except GitError as exc:
        log.warning("could not report the policy on %s#%s: %s", repo, promotion.pr_number, exc)


def on_pull(event: hooks.PullEvent) -> None:
    """A pull request event from Gitea: a PR into an Environment's branch is a promotion under
    that Environment's policy, whoever opened it and wherever."""
    target = next(
        (
            a
            for a in Application.objects.filter(
                environment__organization__slug=event.owner, name=event.repo
            )
            .exclude(state=AppState.UNINSTALLING)
            .select_related(*gitsync.RELATED)
            if naming.branch_for(a.environment.env_type) == event.base
        ),
        None,
    )
    if target is None:
        return
    found = Promotion.objects.filter(target=target, pr_number=event.number).first()
    ours = event.head.startswith(naming.PROMOTION_BRANCH_PREFIX)
    if found is None and ours:  # the portal's own PR, announced before the task recorded it
        found = Promotion.objects.filter(target=target, branch=event.head).first()
        if found is not None and found.pr_number is None:
            Promotion.objects.filter(pk=found.pk).update(pr_number=event.number, pr_url=event.url)
    if event.action == "closed":
        if found is not None and found.state == PromotionState.OPEN:
            state = PromotionState.MERGED if event.merged else PromotionState.CLOSED
            Promotion.objects.filter(pk=found.pk).update(state=state)
        return
    if event.action not in ("opened", "reopened", "synchronized"):
        return
    if found is not None and ours:  # what it promotes is the portal's: the source's revision
        promotion_id = found.pk
        transaction.on_commit(lambda: report(Promotion.objects.get(pk=promotion_id)))
        return
    try:
        raw = backend().read_file(event.owner, event.repo, event.head, manifests.VALUES_FILE)
        current = gitsync.committed_text(target)
    except GitError:
        return
    text = raw.decode("utf-8", "replace") if raw is not None else ""
    diff = "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"a/{target.environment.name}/values.yaml",
            tofile=f"b/{event.head}/values.yaml",
        )
    )
    if found is None:
        source = next(
            (
                a
                for a in Application.objects.filter(
                    environment__organization_id=target.environment.organization_id,
                    name=target.name,
                ).select_related("environment")
                if naming.branch_for(a.environment.env_type) == event.head
            ),
            None,
        )
        from django.contrib.auth import get_user_model

        found = Promotion.objects.create(
            source=source,
            target=target,
            source_revision=event.head_sha,
            text=text,
            diff=diff,
            branch=event.head,
            pr_number=event.number,
            pr_url=event.url,
            opened_by=get_user_model().objects.filter(username=event.user).first(),
            opened_in_gitea_by=event.user,
        )
        audit.record(
            "applications.promote_open",
            actor=None,
            actor_repr=f"{event.user} via Gitea",
            target=target,
            org_slug=target.environment.organization.slug,
            after={"promotion": found.pk, "from": event.head, "revision": event.head_sha},
        )
    else:
        Promotion.objects.filter(pk=found.pk).update(
            source_revision=event.head_sha or found.source_revision, text=text, diff=diff
        )
    promotion_id = found.pk
    transaction.on_commit(lambda: report(Promotion.objects.get(pk=promotion_id)))


def report_open() -> None:
    """Periodic: soak and change windows move with the clock; refresh every open PR's status."""
    for found in Promotion.objects.filter(state=PromotionState.OPEN, pr_number__isnull=False):
        report(found)


def connect() -> None:
    hooks.register_pull_handler(on_pull)
