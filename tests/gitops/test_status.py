"""revision_status: ready only for the committed revision; failures verbatim."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from gitops.status import (
    COMMITTED,
    DEGRADED,
    FAILED,
    GONE,
    READY,
    RECONCILING,
    UNINSTALLING,
    Status,
    combine,
    revision_status,
    uninstall_status,
)

SHA = "a" * 40
OLD = "b" * 40
WANT = f"main@sha1:{SHA}"


@dataclass
class Obj:
    kind: str = "Kustomization"
    ready_status: str = ""
    ready_reason: str = ""
    ready_message: str = ""
    applied_revision: str = ""
    attempted_revision: str = ""
    artifact_revision: str = ""
    generation: int = 1
    observed_generation: int = 1
    deleted_at: object = None


def test_not_seen_yet_is_committed():
    assert revision_status(SHA, "main", None).state == COMMITTED


def test_ready_for_the_committed_revision_is_ready():
    obj = Obj(
        ready_status="True",
        ready_reason="ReconciliationSucceeded",
        ready_message=f"Applied revision: {WANT}",
        applied_revision=WANT,
        attempted_revision=WANT,
    )
    assert tuple(revision_status(SHA, "main", obj)) == (
        READY,
        "ReconciliationSucceeded",
        f"Applied revision: {WANT}",
    )


def test_old_revision_ready_true_is_not_ready():
    obj = Obj(
        ready_status="True",
        ready_reason="ReconciliationSucceeded",
        applied_revision=f"main@sha1:{OLD}",
    )
    assert revision_status(SHA, "main", obj).state == RECONCILING


def test_other_branch_same_sha_is_not_ready():
    obj = Obj(ready_status="True", applied_revision=f"develop@sha1:{SHA}")
    assert revision_status(SHA, "main", obj).state == RECONCILING


def test_newer_revision_containing_the_commit_is_ready_when_the_caller_says_so():
    newer = "main@sha1:" + "c" * 40
    obj = Obj(ready_status="True", applied_revision=newer)
    assert revision_status(SHA, "main", obj).state == RECONCILING
    assert revision_status(SHA, "main", obj, contains=lambda rev: rev == newer).state == READY


def test_stale_generation_is_not_ready():
    obj = Obj(ready_status="True", applied_revision=WANT, generation=2, observed_generation=1)
    assert revision_status(SHA, "main", obj).state == RECONCILING


@pytest.mark.parametrize(
    ("reason", "message", "state"),
    [
        ("BuildFailed", "kustomize build failed: accumulating resources: missing file", FAILED),
        ("DependencyNotReady", "dependency 'flux-system/infra' is not ready", RECONCILING),
        ("Progressing", "Reconciliation in progress", RECONCILING),
    ],
)
def test_failures_are_terminal_only_for_terminal_reasons_and_verbatim(reason, message, state):
    obj = Obj(
        ready_status="False", ready_reason=reason, ready_message=message, attempted_revision=WANT
    )
    assert tuple(revision_status(SHA, "main", obj)) == (state, reason, message)


def test_failure_of_an_older_revision_is_still_reconciling_ours():
    obj = Obj(
        ready_status="False", ready_reason="BuildFailed", attempted_revision=f"main@sha1:{OLD}"
    )
    assert revision_status(SHA, "main", obj).state == RECONCILING


def test_failure_while_an_older_revision_still_runs_is_degraded():
    obj = Obj(
        ready_status="False",
        ready_reason="HealthCheckFailed",
        ready_message="timeout",
        attempted_revision=WANT,
        applied_revision=f"main@sha1:{OLD}",
    )
    assert revision_status(SHA, "main", obj).state == DEGRADED


def test_source_not_found_fails_before_any_revision():
    msg = "Source 'GitRepository/flux-system/acme' not found"
    obj = Obj(ready_status="False", ready_reason="ArtifactFailed", ready_message=msg)
    assert tuple(revision_status(SHA, "main", obj)) == (FAILED, "ArtifactFailed", msg)


def test_helmrelease_with_a_chart_version_is_judged_by_generation():
    msg = "Helm install failed for release demo/web with chart podinfo@6.5.4: timed out"
    failed = Obj(
        kind="HelmRelease",
        ready_status="False",
        ready_reason="InstallFailed",
        ready_message=msg,
        attempted_revision="6.5.4",
    )
    assert tuple(revision_status(SHA, "main", failed)) == (FAILED, "InstallFailed", msg)
    ready = Obj(
        kind="HelmRelease",
        ready_status="True",
        ready_reason="InstallSucceeded",
        attempted_revision="6.5.4",
    )
    assert revision_status(SHA, "main", ready).state == READY
    assert (
        revision_status(SHA, "main", Obj(**{**ready.__dict__, "generation": 2})).state
        == RECONCILING
    )


def test_gitrepository_uses_the_artifact_revision():
    assert (
        revision_status(
            SHA, "main", Obj(kind="GitRepository", ready_status="True", artifact_revision=WANT)
        ).state
        == READY
    )


def test_combine_takes_the_worst_and_uninstall_waits_for_every_object():
    assert combine([Status(READY), Status(FAILED, "X", "y"), Status(RECONCILING)]) == Status(
        FAILED, "X", "y"
    )
    assert combine([]).state == COMMITTED
    gone = Obj(deleted_at=datetime.now(UTC))
    assert uninstall_status([gone, Obj()]).state == UNINSTALLING
    assert uninstall_status([gone]).state == GONE
