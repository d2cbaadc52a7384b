"""Previews: the exact files and unified diffs a change would commit, read from Git, no writes;
with the dependency wiring and the monthly price, so people decide with everything in view."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from gitops.backend import GitError
from gitops.sync import Desired, backend
from gitops.sync import diff as git_diff
from gitops.validation import validate_files

from . import manifests, prices, wiring
from .models import Application, InstallPlan


@dataclass(frozen=True)
class FileChange:
    repo: str
    branch: str
    path: str
    status: str  # added | modified | deleted
    content: str
    diff: str


@dataclass(frozen=True)
class AppWiring:
    """The chart values one Application takes from its dependencies (and computes)."""

    application: str
    dependencies: dict[str, str]
    wires: list[wiring.Wire]

    @property
    def rows(self) -> list[tuple[wiring.Wire, bool]]:
        """Each wire, and whether a later one sets the same chart value (it then does not count)."""
        last = {wire.path: index for index, wire in enumerate(self.wires)}
        return [(wire, last[wire.path] != index) for index, wire in enumerate(self.wires)]


@dataclass(frozen=True)
class Preview:
    files: list[FileChange]
    wiring: list[AppWiring] = field(default_factory=list)
    price: prices.MonthlyPrice | None = None


def _changes(desired: Desired) -> list[FileChange]:
    """Each file the sync would write or delete, with its diff; only files that exist now are
    read back (one read of the tree, then one per modified or deleted file)."""
    git = backend()
    try:
        current = git.read_tree(desired.owner, desired.repo, desired.branch, desired.root).blobs
    except GitError:  # the repo does not exist yet: everything is new
        current = {}
    out = []
    for path, new in sorted(git_diff(desired, current).items()):
        old_raw = (
            git.read_file(desired.owner, desired.repo, desired.branch, path)
            if path in current
            else None
        )
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


def file_changes(
    apps: list[Application], peers: dict[str, Application] | None = None
) -> list[FileChange]:
    """What committing `apps` as they are (saved or not) would change in Git."""
    out: list[FileChange] = []
    inputs = manifests.Inputs()  # read once for every Application of the preview
    for app in apps:
        for desired in manifests.trees(app, peers=peers, inputs=inputs):
            validate_files(desired.files)
            out += _changes(desired)
    return out


def wiring_of(
    apps: list[Application], peers: dict[str, Application] | None = None
) -> list[AppWiring]:
    found = []
    for app in apps:
        wires = wiring.wires(app, manifests.dependency_apps(app, peers))
        if wires:
            found.append(AppWiring(app.name, dict(app.dependencies or {}), wires))
    return found


def price_of(apps: list[Application]) -> prices.MonthlyPrice:
    return prices.monthly(
        (a.name, a.size, a.placement, len(a.regions) or 1)
        for a in apps
        if a.state != "uninstalling"
    )


def preview(plan: InstallPlan) -> list[FileChange]:
    """The exact files and diffs the plan's install would commit (reads Git, writes nothing)."""
    apps = plan.applications
    return file_changes(apps, {a.name: a for a in apps})


def plan_preview(plan: InstallPlan) -> Preview:
    """Files, wiring and the monthly price of installing the plan (one step, nothing written)."""
    apps = plan.applications
    peers = {a.name: a for a in apps}
    return Preview(file_changes(apps, peers), wiring_of(apps, peers), price_of(apps))


def change_preview(changed: Application) -> Preview:
    """A day-2 change of one Application (an unsaved copy with the change applied)."""
    return Preview(file_changes([changed]), wiring_of([changed]), price_of([changed]))
