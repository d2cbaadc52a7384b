"""Group commit of Organization syncs: a burst of Organizations created over HTTP while the broker
was away is delivered by fewer commits than Organizations, each Organization's files committed
exactly once and each audit event named in a commit message; one Organization that cannot be
delivered is rescheduled alone; a killed worker's batch is taken again after the lease."""

from __future__ import annotations

import re
import time
from typing import Any
from unittest import mock

import pytest
import yaml
from django.utils import timezone

from core import outbox
from core.models import AuditEvent, OutboxItem
from orgs import manifests
from orgs.models import Environment, Organization
from tests.conftest import make_user
from tests.gitutil import commits, git, show

pytestmark = pytest.mark.django_db(transaction=True)
TASK = "orgs.tasks.sync_organization_task"


def _create_burst(client_for: Any, users: list[Any], slugs: list[str]) -> None:
    """Create the Organizations over HTTP while the broker is down: their outbox rows wait."""
    with mock.patch("core.outbox.send", return_value=False):
        for index, slug in enumerate(slugs):
            response = client_for(users[index % len(users)]).post(
                "/orgs/new/",
                {
                    "slug": slug,
                    "display_name": slug.title(),
                    "default_env_type": "prod",
                    "env_type": "prod",
                    "regions": ["hz-fsn-rtz-prod"],
                },
            )
            assert response.status_code == 302, response.content[:300]
    assert OutboxItem.objects.pending().filter(task_name=TASK).count() == len(slugs)
    assert commits() == []


def _added_in(path: str) -> list[str]:
    """The commits on main that added `path`."""
    return git(
        "system", "catalyst-config", "log", "--format=%H", "--diff-filter=A", "main", "--", path
    ).split()


def _messages() -> str:
    return git("system", "catalyst-config", "log", "--format=%B%x00", "main")


def test_a_burst_is_delivered_by_fewer_commits_each_org_exactly_once(
    sovereign, client_for, settings
):
    settings.GIT_GROUP_COMMIT_MAX = 4
    users = [make_user("ann"), make_user("bob")]
    slugs = [f"burst-{n:02d}" for n in range(10)]
    _create_burst(client_for, users, slugs)

    assert outbox.sweep() == 10  # the broker is back: every row is sent (tasks run in-process)

    subjects = commits()
    org_commits = [s for s in subjects if s != "Initial commit"]
    assert org_commits == ["sync 2 organizations", "sync 4 organizations", "sync 4 organizations"]
    assert not OutboxItem.objects.pending().exists()
    assert set(OutboxItem.objects.values_list("attempts", flat=True)) == {1}
    messages = _messages()
    for slug in slugs:
        org = Organization.objects.get(slug=slug)
        added = _added_in(f"organizations/{slug}/organization.yaml")
        assert len(added) == 1, f"{slug} added by {len(added)} commits"
        assert org.delivery_state == "delivered" and org.state == "provisioning"
        assert org.last_commit_sha == added[0]
        env = Environment.objects.get(organization=org)
        assert env.delivery_state == "delivered" and env.last_commit_sha == added[0]
        assert yaml.safe_load(show(f"organizations/{slug}/organization.yaml"))["kind"] == (
            "Organization"
        )
        event = AuditEvent.objects.get(action="organization.create", org_slug=slug)
        block = f"organization.create: organization {slug}\nAudit-Event: {event.pk}\n"
        assert messages.count(block) == 1
        assert f"Actor: {event.actor_repr}\n" in messages
    # two actors in each group: the portal is the author
    authors = git("system", "catalyst-config", "log", "--format=%an", "main").split("\n")
    assert set(authors[:3]) == {"Catalyst Portal"}
    # the rows' requests are named in the trailers
    request_ids = set(OutboxItem.objects.values_list("request_id", flat=True))
    assert request_ids - {""} <= set(re.findall(r"Request-Id: (\S+)", messages))


def test_one_actors_group_is_authored_by_that_actor_and_one_row_keeps_todays_message(
    sovereign, client_for, settings
):
    ann = make_user("ann", first_name="Ann", last_name="Lee")
    _create_burst(client_for, [ann], ["solo-a", "solo-b"])
    outbox.sweep()
    assert git("system", "catalyst-config", "log", "-1", "--format=%an|%s", "main") == (
        "Ann Lee|sync 2 organizations\n"
    )
    response = client_for(ann).post("/orgs/solo-a/edit/", {"display_name": "Solo A2"})
    assert response.status_code == 302
    # one row alone: exactly the single-item message of before, by its actor
    event = AuditEvent.objects.get(action="organization.update", org_slug="solo-a")
    assert git("system", "catalyst-config", "log", "-1", "--format=%an%n%B", "main") == (
        f"Ann Lee\norganization.update: organization solo-a\n\nAudit-Event: {event.pk}\n"
        f"Actor: {event.actor_repr}\nRequest-Id: {event.request_id}\n\n"
    )


def test_an_org_that_cannot_be_delivered_is_rescheduled_alone(sovereign, client_for, monkeypatch):
    users = [make_user("ann")]
    _create_burst(client_for, users, ["good-a", "bad-b", "good-c"])
    real = manifests.organization_manifest

    def broken_for_bad(org: Any, sovereign: Any) -> dict[str, Any]:
        doc = real(org, sovereign)
        if org.slug == "bad-b":
            doc["metadata"] = {}  # invalid: no name
        return doc

    monkeypatch.setattr(manifests, "organization_manifest", broken_for_bad)
    outbox.sweep()

    assert [s for s in commits() if s != "Initial commit"] == ["sync 2 organizations"]
    assert "bad-b" not in _messages()
    for slug in ("good-a", "good-c"):
        assert len(_added_in(f"organizations/{slug}/organization.yaml")) == 1
        assert Organization.objects.get(slug=slug).delivery_state == "delivered"
    bad = Organization.objects.get(slug="bad-b")
    assert bad.delivery_state == "retrying" and bad.delivery_error.startswith("ManifestError:")
    assert Environment.objects.get(organization=bad).delivery_state == "retrying"
    row = OutboxItem.objects.get(task_name=TASK, key=str(bad.pk))
    assert row.done_at is None and row.last_error.startswith("ManifestError:")
    assert row.available_at > timezone.now() and row.attempts == 1
    assert OutboxItem.objects.pending().count() == 1

    # fixed: the next attempt delivers it alone, with the single-item message of before
    monkeypatch.setattr(manifests, "organization_manifest", real)
    OutboxItem.objects.filter(pk=row.pk).update(available_at=timezone.now())
    outbox.sweep()
    assert commits()[0] == "organization.create: organization bad-b"
    assert Organization.objects.get(pk=bad.pk).delivery_state == "delivered"
    assert not OutboxItem.objects.pending().exists()


class _NoHeartbeat:
    """A killed worker's heartbeat: it beats no more."""

    def __init__(self, *args: Any) -> None:
        pass

    def stop(self) -> None:
        pass


def test_a_killed_workers_batch_is_taken_again_after_the_lease(
    sovereign, client_for, settings, monkeypatch
):
    settings.OUTBOX_LEASE_SECONDS = 2
    _create_burst(client_for, [make_user("ann")], ["kill-a", "kill-b", "kill-c"])
    first = OutboxItem.objects.filter(task_name=TASK).order_by("pk").first()
    assert first is not None
    with monkeypatch.context() as m:
        m.setattr(outbox, "_Heartbeat", _NoHeartbeat)
        dead = outbox.claim_batch(first.pk, also=10)
        batch = dead.__enter__()  # the worker dies inside its block: it never exits
    assert batch is not None and len(batch.items) == 3
    assert outbox.sweep() == 0  # all three are leased: nothing is due, nothing is delivered
    assert commits() == []

    deadline = time.monotonic() + 10
    while OutboxItem.objects.due().count() < 3 and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting on the condition: the lease running out
    assert outbox.sweep() == 3
    assert [s for s in commits() if s != "Initial commit"] == ["sync 3 organizations"]
    for slug in ("kill-a", "kill-b", "kill-c"):
        assert len(_added_in(f"organizations/{slug}/organization.yaml")) == 1
    rows = OutboxItem.objects.filter(task_name=TASK)
    assert all(r.done_at is not None and r.attempts == 2 for r in rows)


def test_a_burst_on_gitea_is_one_commit_with_every_org(sovereign, client_for, settings, gitea):
    """The same group commit through the Gitea backend (the emulator over HTTP): one multi-file
    commit carries every Organization of the batch."""
    from gitops import sync as gitops_sync

    settings.GITEA_URL, settings.GITEA_TOKEN = gitea.url, gitea.token
    gitops_sync.backend.cache_clear()
    try:
        slugs = ["tea-a", "tea-b", "tea-c"]
        with mock.patch("core.outbox.send", return_value=False):
            for slug in slugs:
                response = client_for(make_user(slug)).post(
                    "/orgs/new/",
                    {"slug": slug, "display_name": slug, "default_env_type": "prod"},
                )
                assert response.status_code == 302
        assert outbox.sweep() == 3
        assert gitea.log("system", "catalyst-config") == ["sync 3 organizations", "Initial commit"]
        for slug in slugs:
            assert gitea.read(
                "system", "catalyst-config", f"organizations/{slug}/organization.yaml"
            )
            assert Organization.objects.get(slug=slug).delivery_state == "delivered"
        assert not OutboxItem.objects.pending().exists()
    finally:
        gitops_sync.backend.cache_clear()
