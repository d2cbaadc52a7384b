"""The pushes Gitea reported (`gitops.GitPush`, written by the signed webhook) are kept for
`GIT_PUSH_RETENTION_DAYS` only: the periodic Git reconcile prunes older rows, so the table stays
bounded however long the portal runs."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from gitops.models import GitPush
from marketplace.tasks import reconcile_git_task

pytestmark = pytest.mark.django_db
SECRET = "retention-hook-secret"


def _deliver(client: Client, delivery: str, after: str) -> int:
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "after": after,
            "repository": {"full_name": "acme/cache"},
            "pusher": {"login": "tina"},
        }
    ).encode()
    return client.post(
        "/hooks/gitea/",
        data=body,
        content_type="application/json",
        HTTP_X_GITEA_EVENT="push",
        HTTP_X_GITEA_SIGNATURE=hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        HTTP_X_GITEA_DELIVERY=delivery,
    ).status_code


def test_pushes_older_than_the_retention_are_pruned_by_the_reconcile(settings, on_commit):
    settings.GITEA_WEBHOOK_SECRET = SECRET
    settings.GIT_PUSH_RETENTION_DAYS = 7
    client = Client()
    with on_commit():
        assert _deliver(client, "d-old", "a" * 40) == 202
        assert _deliver(client, "d-edge", "b" * 40) == 202
        assert _deliver(client, "d-new", "c" * 40) == 202
    now = timezone.now()
    GitPush.objects.filter(delivery="d-old").update(received_at=now - timedelta(days=8))
    GitPush.objects.filter(delivery="d-edge").update(received_at=now - timedelta(days=6))

    with on_commit():
        reconcile_git_task.delay()
    assert sorted(GitPush.objects.values_list("delivery", flat=True)) == ["d-edge", "d-new"]
    # a redelivery of a kept push is still recognised
    with on_commit():
        assert _deliver(client, "d-new", "c" * 40) == 200
    assert GitPush.objects.count() == 2
