"""Previews: the exact files and unified diffs an install would commit, read from Git, no writes."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from gitops.sync import Desired, backend
from gitops.sync import plan as git_plan
from gitops.validation import validate_files

from . import manifests
from .models import BlueprintVersion, InstallPlan
from .services import unsaved_application


@dataclass(frozen=True)
class FileChange:
    repo: str
    branch: str
    path: str
    status: str  # added | modified | deleted
    content: str
    diff: str


def _changes(desired: Desired) -> list[FileChange]:
    result = git_plan(desired)
    out = []
    for path, new in sorted(result.changes.items()):
        try:
            old_raw = backend().read_file(desired.owner, desired.repo, desired.branch, path)
        except Exception:  # the repo does not exist yet
            old_raw = None
        old = (old_raw or b"").decode()
        text = (new or b"").decode()
        status = "deleted" if new is None else ("modified" if old_raw is not None else "added")
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"a/{path}" if old_raw is not None else "/dev/null",
                tofile=f"b/{path}" if new is not None else "/dev/null",
            )
        )
        out.append(
            FileChange(f"{desired.owner}/{desired.repo}", desired.branch, path, status, text, diff)
        )
    return out


def preview(plan: InstallPlan) -> list[FileChange]:
    """The exact files and diffs the plan's install would commit (reads Git, writes nothing)."""
    env = plan.environment
    by_id = {
        v.pk: v
        for v in BlueprintVersion.objects.filter(
            pk__in=[a["version_id"] for a in plan.data["apps"]]
        ).select_related("blueprint")
    }
    apps = [unsaved_application(env, spec, by_id[spec["version_id"]]) for spec in plan.data["apps"]]
    peers = {app.name: app for app in apps}
    out: list[FileChange] = []
    for app in apps:
        for desired in manifests.trees(app, peers=peers):
            validate_files(desired.files)
            out += _changes(desired)
    return out
