"""Git server down during an install: the request is accepted, the Application says retrying, and
one sweep after the server returns converges with exactly one commit (Gitea emulator over HTTP)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core import outbox
from core.models import OutboxItem
from gitops import sync as gitops_sync
from marketplace.models import Application

pytestmark = pytest.mark.django_db
URL = "/api/v1/orgs/acme/environments/acme-prod/applications/"


@pytest.fixture
def portal_on_gitea(settings, gitea):
    settings.GITEA_URL = gitea.url
    settings.GITEA_TOKEN = gitea.token
    settings.GITEA_TIMEOUT_SECONDS = 5
    gitops_sync.backend.cache_clear()
    yield gitea
    gitops_sync.backend.cache_clear()


def test_install_while_git_is_down_converges_with_one_commit(
    catalog, cast, client_for, on_commit, portal_on_gitea
):
    gitea = portal_on_gitea
    gitea.stop()
    with on_commit():
        response = client_for(cast["admin"]).post(
            URL, {"name": "cache", "blueprint": "bp-valkey"}, content_type="application/json"
        )
    assert response.status_code == 201
    app = Application.objects.get(name="cache")
    assert app.delivery_state == "retrying" and "unreachable" in app.delivery_error
    assert app.state == "committing" and app.last_commit_sha == ""
    item = OutboxItem.objects.get(
        task_name="marketplace.tasks.sync_application_task", key=str(app.pk)
    )
    assert item.done_at is None and item.attempts == 1
    page = client_for(cast["viewer"]).get("/marketplace/apps/acme-prod/cache/")
    assert b"Retrying" in page.content and b"unreachable" in page.content

    gitea.start()
    OutboxItem.objects.filter(pk=item.pk).update(available_at=timezone.now() - timedelta(seconds=1))
    assert outbox.sweep() == 1
    app.refresh_from_db()
    assert app.delivery_state == "delivered" and app.state == "committed" and app.last_commit_sha
    assert gitea.log("acme", "cache") == [
        "applications.install: application acme-prod/cache",
        "Initial commit",
    ]
    assert gitea.read(
        "system", "catalyst-config", "applications/acme/acme-prod/cache/gitrepository.yaml"
    )
    assert outbox.sweep() == 0
    assert gitea.log("acme", "cache") == [
        "applications.install: application acme-prod/cache",
        "Initial commit",
    ]
