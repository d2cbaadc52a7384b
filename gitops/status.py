"""From what Flux reports to what the portal shows: pure functions, no database.

A portal object (an Organization, an Application) is delivered by a commit; it is `ready` only
when Flux reports Ready=True *for that commit's revision* (`<branch>@sha1:<sha>`): an old
revision's Ready=True means the new commit has not been applied yet. Reasons and messages are
passed through verbatim.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

COMMITTED = "committed"
RECONCILING = "reconciling"
READY = "ready"
DEGRADED = "degraded"
FAILED = "failed"
UNINSTALLING = "uninstalling"
GONE = "gone"

# Ready=False reasons after which Flux will not succeed without a change (a new commit, a fixed
# source). Anything else (DependencyNotReady, Progressing, ...) is still reconciling.
TERMINAL_REASONS = frozenset(
    {
        # kustomize-controller
        "BuildFailed",
        "HealthCheckFailed",
        "ReconciliationFailed",
        "PruneFailed",
        "ArtifactFailed",
        # helm-controller v2
        "InstallFailed",
        "UpgradeFailed",
        "TestFailed",
        "RollbackFailed",
        "UninstallFailed",
        "InitFailed",
        "GetLastReleaseFailed",
        "RetriesExceeded",
        # source-controller
        "GitOperationFailed",
        "AuthenticationFailed",
        "StorageOperationFailed",
        "URLInvalid",
        "InvalidChartReference",
    }
)
_WORST = [GONE, READY, COMMITTED, UNINSTALLING, RECONCILING, DEGRADED, FAILED]


class Observed(Protocol):
    """What `revision_status` reads of a watched object (gitops.models.FluxObject has it all)."""

    kind: str
    ready_status: str
    ready_reason: str
    ready_message: str
    applied_revision: str
    attempted_revision: str
    artifact_revision: str
    generation: int
    observed_generation: int
    deleted_at: Any


@dataclass(frozen=True)
class Status:
    state: str
    reason: str = ""
    message: str = ""

    def __iter__(self) -> Iterator[str]:
        return iter((self.state, self.reason, self.message))


def wanted_revision(branch: str, sha: str) -> str:
    return f"{branch}@sha1:{sha}"


def _reconciled(obj: Observed) -> str:
    """The Git revision the object reports as successfully reconciled ("" when it has none)."""
    if obj.kind == "GitRepository":
        return obj.artifact_revision
    if obj.kind == "HelmRelease":
        # helm-controller reports the chart version; it is a Git revision only for Git charts.
        return obj.attempted_revision if "@" in obj.attempted_revision else ""
    return obj.applied_revision


def revision_status(
    committed_sha: str,
    branch: str,
    obj: Observed | None,
    *,
    contains: Callable[[str], bool] | None = None,
) -> Status:
    """The state of the commit `committed_sha` on `branch` as reported by one Flux object.

    committed → reconciling → ready | degraded | failed. `contains(revision)` may say whether a
    newer reconciled revision includes the commit (a shared Kustomization moves on with other
    commits); without it only the exact revision counts.
    """
    if obj is None or obj.deleted_at is not None:
        return Status(COMMITTED, "", "Committed; Flux has not reported on it yet.")
    want = wanted_revision(branch, committed_sha)
    reason, message = obj.ready_reason, obj.ready_message
    current = obj.observed_generation >= obj.generation

    def at_or_after(revision: str) -> bool:
        if not revision:
            return False
        return revision == want or bool(contains and contains(revision))

    reconciled = _reconciled(obj)
    judged_by_generation = obj.kind == "HelmRelease" and not reconciled
    if obj.ready_status == "True" and current:
        if at_or_after(reconciled) or judged_by_generation:
            return Status(READY, reason, message)
        return Status(RECONCILING, reason, message or f"Waiting for {want}.")
    if obj.ready_status == "False" and reason in TERMINAL_REASONS:
        attempted = obj.attempted_revision
        if not attempted or "@" not in attempted or at_or_after(attempted):
            previous = reconciled and not at_or_after(reconciled)
            return Status(DEGRADED if previous else FAILED, reason, message)
    return Status(RECONCILING, reason, message)


def combine(statuses: Iterable[Status]) -> Status:
    """The worst of several objects' states (e.g. an Application in several regions)."""
    worst: Status | None = None
    for status in statuses:
        if worst is None or _WORST.index(status.state) > _WORST.index(worst.state):
            worst = status
    return worst or Status(COMMITTED)


def uninstall_status(objects: Iterable[Observed]) -> Status:
    """An uninstall is complete when every watched object of it is gone from the cluster."""
    remaining = [o for o in objects if o.deleted_at is None]
    if not remaining:
        return Status(GONE)
    return Status(UNINSTALLING, "", f"Waiting for Flux to remove {len(remaining)} object(s).")
