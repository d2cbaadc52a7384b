"""Reliable delivery through the real HTTP interface: Git server down, broker down, recovery.

The portal talks to the Gitea emulator over HTTP (GITEA_URL); the emulator is stopped and started
again on the same port. The user's action must succeed either way, the object must say "retrying"
with the error, and once the fault is gone one sweep must converge with exactly one commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import yaml
from django.utils import timezone

from catalyst_portal.celery import app as celery_app
from core import outbox
from core.models import OutboxItem
from gitops import sync as gitops_sync
from orgs.models import Organization
from orgs.tasks import sync_organization_task
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

FORM = {
    "slug": "carol-co",
    "display_name": "Carol & Co",
    "default_env_type": "prod",
    "env_type": "prod",
    "regions": ["hz-fsn-rtz-prod"],
}
SUBJECT = "organization.create: organization carol-co"


@pytest.fixture
def portal_on_gitea(settings: Any, gitea: Any) -> Any:
    settings.GITEA_URL = gitea.url
    settings.GITEA_TOKEN = gitea.token
    settings.GITEA_TIMEOUT_SECONDS = 5
    gitops_sync.backend.cache_clear()
    yield gitea
    gitops_sync.backend.cache_clear()


def config_commits(gitea: Any) -> list[str]:
    return gitea.log("system", "catalyst-config")


def test_git_server_down_then_back_converges_with_exactly_one_commit(
    sovereign, client_for, on_commit, portal_on_gitea, settings
):
    gitea = portal_on_gitea
    user = make_user("carol")
    gitea.stop()

    with on_commit():
        response = client_for(user).post("/orgs/new/", FORM)

    # the action succeeded; the object says "retrying" with the error
    assert response.status_code == 302 and response["Location"] == "/orgs/carol-co/"
    org = Organization.objects.get(slug="carol-co")
    unreachable = f"GitError: Gitea at 127.0.0.1:{gitea.port} is unreachable"
    assert org.delivery_state == "retrying" and org.delivery_error.startswith(unreachable)
    assert gitea.token not in org.delivery_error
    item = OutboxItem.objects.get(task_name="orgs.tasks.sync_organization_task", key=str(org.pk))
    assert item.done_at is None and item.attempts == 1
    assert item.last_error.startswith(unreachable) and item.available_at > timezone.now()
    page = client_for(user).get("/orgs/carol-co/")
    assert page.status_code == 200
    assert b"retrying" in page.content and unreachable.split(": ", 1)[1].encode() in page.content
    assert client_for(make_user("nosy")).get("/orgs/carol-co/").status_code == 404
    assert outbox.sweep() == 0  # not due yet: the backoff holds it

    gitea.start()
    OutboxItem.objects.filter(pk=item.pk).update(available_at=timezone.now() - timedelta(seconds=1))

    assert outbox.sweep() == 1

    org.refresh_from_db()
    item.refresh_from_db()
    assert org.delivery_state == "delivered" and org.delivery_error == ""
    assert config_commits(gitea) == [SUBJECT, "Initial commit"]
    assert gitea.read("system", "catalyst-config", "organizations/carol-co/organization.yaml")
    env_cr = yaml.safe_load(
        gitea.read(
            "system", "catalyst-config", "organizations/carol-co/environments/carol-co-prod.yaml"
        )
    )
    assert env_cr["metadata"]["labels"]["openova.io/organization"] == "carol-co"
    with gitea._repo("system", "catalyst-config") as repo:
        assert org.last_commit_sha == repo.refs[b"refs/heads/main"].decode()
    assert gitea.tree("carol-co", "shared-blueprints") == ["README.md"]
    assert item.done_at is not None and item.last_error == "" and item.attempts == 2
    page = client_for(user).get("/orgs/carol-co/")
    assert b"committed" in page.content and org.last_commit_sha[:8].encode() in page.content

    # again: nothing due, and a replayed task finds its row done — still one commit
    assert outbox.sweep() == 0
    sync_organization_task.delay(item.pk)
    assert config_commits(gitea) == [SUBJECT, "Initial commit"]
    assert OutboxItem.objects.get(pk=item.pk).attempts == 2


def test_retry_while_git_is_still_down_keeps_retrying_with_backoff(
    sovereign, client_for, on_commit, portal_on_gitea, settings
):
    gitea = portal_on_gitea
    settings.OUTBOX_RETRY_BASE_SECONDS = 0  # due again at once
    gitea.stop()
    with on_commit():
        assert client_for(make_user("carol")).post("/orgs/new/", FORM).status_code == 302

    assert outbox.sweep() == 1  # the retry runs, fails again, and stays pending

    item = OutboxItem.objects.get(task_name="orgs.tasks.sync_organization_task")
    assert item.done_at is None and item.attempts == 2 and "unreachable" in item.last_error
    assert Organization.objects.get(slug="carol-co").delivery_state == "retrying"
    gitea.start()
    assert outbox.sweep() == 1
    assert Organization.objects.get(slug="carol-co").delivery_state == "delivered"
    assert config_commits(gitea) == [SUBJECT, "Initial commit"]


def _reset_broker_pool() -> None:
    """Forget the app's pools so the next send connects to the current broker_url.

    (kombu keeps one pool per broker URL for the process; closing one would break later tests.)
    """
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def broker_down() -> Iterator[None]:
    """Tasks go through a broker again, and the broker is a closed port."""
    conf = celery_app.conf
    saved = (conf.task_always_eager, conf.broker_url)
    conf.task_always_eager = False
    conf.broker_url = "redis://127.0.0.1:1/0"
    _reset_broker_pool()
    try:
        yield
    finally:
        conf.task_always_eager, conf.broker_url = saved
        _reset_broker_pool()


def test_broker_down_the_action_succeeds_and_the_sweeper_delivers_once(
    sovereign, client_for, on_commit, portal_on_gitea, caplog
):
    gitea = portal_on_gitea
    user = make_user("carol")

    with broker_down(), caplog.at_level(logging.WARNING, logger="core.outbox"):
        with on_commit():
            response = client_for(user).post("/orgs/new/", FORM)
        assert response.status_code == 302
        assert outbox.sweep() == 0  # the broker is still down: nothing could be sent

    org = Organization.objects.get(slug="carol-co")
    assert org.delivery_state == "pending"
    item = OutboxItem.objects.get(task_name="orgs.tasks.sync_organization_task", key=str(org.pk))
    assert item.done_at is None and item.attempts == 0
    assert "could not enqueue orgs.tasks.sync_organization_task" in caplog.text
    assert config_commits(gitea) == []  # nothing reached Git
    assert b"pending" in client_for(user).get("/orgs/carol-co/").content

    assert outbox.sweep() == 1  # eager mode restored: the sweeper delivers it

    org.refresh_from_db()
    assert org.delivery_state == "delivered"
    assert config_commits(gitea) == [SUBJECT, "Initial commit"]
    assert OutboxItem.objects.get(pk=item.pk).done_at is not None
    assert outbox.sweep() == 0
    assert config_commits(gitea) == [SUBJECT, "Initial commit"]


def test_git_storage_error_is_one_clear_log_line_per_attempt_without_traceback(
    sovereign, client_for, on_commit, settings, tmp_path, caplog
):
    """The Git storage cannot be written (here: GIT_ROOT is a file, as a misconfigured volume
    is): each attempt logs one line naming the path and the cause, not "unexpected" with a
    traceback; the Organization says retrying with the cause."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the Git root should be")
    settings.GIT_ROOT = blocked
    settings.OUTBOX_RETRY_BASE_SECONDS = 0
    gitops_sync.backend.cache_clear()
    caplog.set_level(logging.INFO)
    with on_commit():
        assert client_for(make_user("carol")).post("/orgs/new/", FORM).status_code == 302
    assert outbox.sweep() == 1  # a retry: the same single line again

    records = [r for r in caplog.records if r.name == "core.outbox"]
    assert len(records) == 2
    for record in records:
        assert record.levelno == logging.ERROR and record.exc_info is None
        message = record.getMessage()
        assert "\n" not in message and "unexpected" not in message
        assert str(blocked) in message
    org = Organization.objects.get(slug="carol-co")
    assert org.delivery_state == "retrying" and str(blocked) in org.delivery_error
