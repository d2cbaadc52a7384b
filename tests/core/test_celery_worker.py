"""Delivery through a real Celery worker process over Valkey, on PostgreSQL (the CI services run)."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db import connection

from catalyst_portal.celery import app
from core.models import OutboxItem
from orgs.models import Organization
from tests.conftest import make_user
from tests.gitutil import commits
from tests.pooling import wait_for
from tests.worker import delivering_worker, start_worker, stop_worker

# One Celery worker at a time: every worker consumes the same Valkey queue.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("celery-worker")]


@pytest.fixture
def worker(settings, tmp_path, sovereign):
    with delivering_worker(settings, tmp_path / "worker.log") as proc:
        yield proc


def test_worker_delivers_an_organization_created_over_http(worker, client):
    user = make_user("wendy")
    client.force_login(user)
    response = client.post(
        "/orgs/new/",
        {
            "slug": "wendy-co",
            "display_name": "Wendy",
            "default_env_type": "prod",
            "env_type": "prod",
            "regions": ["hz-fsn-rtz-prod"],
        },
    )
    assert response.status_code == 302
    # the outbox row is marked done last, after the commit and the org's state updates
    assert wait_for(lambda: not OutboxItem.objects.pending().exists(), timeout=30)
    org = Organization.objects.get(slug="wendy-co")
    assert org.delivery_state == "delivered" and org.state == "provisioning"
    assert commits()[0] == "organization.create: organization wendy-co"
    assert org.last_commit_sha


def test_the_sweeper_task_redelivers_a_row_the_broker_never_got(worker):
    user = make_user("xavier")
    # The row is written but the message is lost (as when the broker was down at commit time).
    from unittest import mock

    from orgs import services

    with mock.patch("core.outbox.send", return_value=False):
        org = services.create_organization(by=user, slug="xavier-co", display_name="Xavier")
    assert OutboxItem.objects.pending().filter(key=str(org.pk)).exists()
    assert commits() == []
    app.tasks["core.tasks.sweep_outbox_task"].apply_async(queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    assert wait_for(
        lambda: Organization.objects.get(pk=org.pk).delivery_state == "delivered", timeout=30
    )
    assert commits() == ["organization.create: organization xavier-co", "Initial commit"]


def test_a_prefork_worker_serves_the_metrics_of_the_children_that_ran_the_tasks(
    settings, tmp_path, sovereign
):
    """PORTAL_METRICS_PORT: the worker serves /metrics; its prefork children deliver, and their
    counts reach the exporter (multiprocess mode switched on before the pool forks)."""
    import httpx

    from tests.core.test_metrics import sample
    from tests.serving import free_port

    if connection.vendor != "postgresql" or not settings.VALKEY_URL:
        pytest.skip("needs DATABASE_URL (PostgreSQL) and VALKEY_URL")
    settings.CELERY_TASK_DEFAULT_QUEUE = f"test-{uuid.uuid4().hex}"
    port = free_port()
    proc = start_worker(
        git_root=settings.GIT_ROOT,
        log_path=tmp_path / "worker.log",
        pool="prefork",
        env={"PORTAL_METRICS_PORT": str(port), "PORTAL_METRICS_HOST": "127.0.0.1"},
    )
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    try:
        url = f"http://127.0.0.1:{port}/metrics"  # loopback: an internal address
        task = {"task": "orgs.tasks.sync_organization_task", "outcome": "done"}
        before = sample(httpx.get(url, timeout=10).text, "portal_tasks_total", **task)
        from orgs import services

        services.create_organization(by=make_user("yara"), slug="yara-co", display_name="Yara")
        assert wait_for(lambda: not OutboxItem.objects.pending().exists(), timeout=60)
        after = httpx.get(url, timeout=10).text
        assert sample(after, "portal_tasks_total", **task) == before + 1
        assert sample(after, "portal_git_commit_duration_seconds_count", repo="config") >= 1
    finally:
        app.conf.task_always_eager = True
        stop_worker(proc)
