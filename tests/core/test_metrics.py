"""Prometheus metrics at /metrics (core/metrics.py): who may scrape, and that the numbers move.

Scraped over real HTTP from `manage.py serve` (two uvicorn workers in multiprocess mode when
Valkey is there, one embedded): request counts and latencies by route, deliveries (task latency,
Git commit durations), outbox depth and age, and the Flux watch lag.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from accounts.services import create_api_token
from core.models import OutboxItem
from gitops.models import FluxCluster
from orgs.models import Organization
from tests.serving import browse, serve, signed_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("serve")]
__all__ = ["serve"]
TOKEN = "metrics-token-0123456789abcdef"


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_only_the_token_or_an_internal_address_may_scrape(settings: Any, client: Any, cast: Any):
    settings.METRICS_TOKEN = ""
    settings.METRICS_NETWORKS = ["127.0.0.1/32"]
    ok = client.get("/metrics")  # the test client comes from 127.0.0.1
    assert ok.status_code == 200 and ok["Content-Type"].startswith("text/plain")
    assert "portal_http_requests_total" in ok.content.decode()

    settings.METRICS_NETWORKS = []
    assert client.get("/metrics").status_code == 404  # not public, and not saying so
    client.force_login(cast["sovereign_operator"])  # a session, even an operator's, is no key
    assert client.get("/metrics").status_code == 404

    settings.METRICS_TOKEN = TOKEN
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401 and b"portal_" not in wrong.content
    right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and b"portal_outbox_pending" in right.content


def test_scraped_counters_follow_requests_deliveries_outbox_and_watch_lag(
    serve: Any, cast: Any, tmp_path: Path
) -> None:
    workers = 2 if django_settings.VALKEY_URL else 1  # several workers need Valkey
    server = serve(
        PORTAL_WEB_WORKERS=str(workers),
        PORTAL_TASKS_EAGER="true",  # deliveries run in the server: their metrics are its own
        PORTAL_METRICS_TOKEN=TOKEN,
        PORTAL_METRICS_NETWORKS="",
    )
    scraper = httpx.Client(base_url=server.url, timeout=30)

    def scrape() -> str:
        response = scraper.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        return response.text

    assert scraper.get("/metrics").status_code == 401
    before = scrape()

    # requests: counted by route pattern and status, every worker's added up
    browser = signed_in(server.url, cast["owner"])
    statuses = browse(browser, ["/orgs/", "/orgs/acme/"], users=8, rounds=5)
    assert statuses == {200: 80}
    after = scrape()
    for route in ("orgs/", "orgs/<slug:slug>/"):
        counted = sample(after, "portal_http_requests_total", route=route, status="200")
        counted -= sample(before, "portal_http_requests_total", route=route, status="200")
        assert counted == 40, route
        timed = sample(after, "portal_http_request_duration_seconds_count", route=route)
        timed -= sample(before, "portal_http_request_duration_seconds_count", route=route)
        assert timed == 40, route
    assert sample(after, "portal_http_requests_total", route="/metrics", status="401") >= 1
    if workers > 1:  # multiprocess mode: each worker wrote its own files, the scrape adds them
        files = list((tmp_path / "var").glob("metrics-*/*.db"))
        assert {f.stem.rsplit("_", 1)[1] for f in files} == {str(p) for p in server.worker_pids()}

    # a delivery: an Organization created over the API is committed to Git by its task
    token = create_api_token(user=cast["owner"], name="metrics")[1]
    created = httpx.post(
        f"{server.url}/api/v1/orgs/",
        json={"slug": "metrics-co", "display_name": "Metrics Co"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert Organization.objects.get(slug="metrics-co").last_commit_sha
    delivered = scrape()
    task = "orgs.tasks.sync_organization_task"
    for name, labels in (
        ("portal_tasks_total", {"task": task, "outcome": "done"}),
        ("portal_task_latency_seconds_count", {"task": task}),
        ("portal_task_duration_seconds_count", {"task": task, "outcome": "done"}),
        ("portal_git_commit_duration_seconds_count", {"repo": "config", "outcome": "ok"}),
    ):
        assert sample(delivered, name, **labels) > sample(after, name, **labels), name

    # outbox depth and the age of the oldest pending row, read from the database when scraped
    long_ago = timezone.now() - timedelta(seconds=90)
    later = timezone.now() + timedelta(hours=1)  # not due: no sweeper takes them meanwhile
    for key in ("1", "2"):
        OutboxItem.objects.create(
            task_name="core.tasks.noop", key=key, created_at=long_ago, available_at=later
        )
    # the watch lag of a cluster last heard from 42 seconds ago
    FluxCluster.objects.create(
        name="hz-fsn-rtz-prod",
        connected=True,
        last_contact_at=timezone.now() - timedelta(seconds=42),
    )
    gauges = scrape()
    assert sample(gauges, "portal_outbox_pending") == OutboxItem.objects.pending().count() >= 2
    assert 90 <= sample(gauges, "portal_outbox_oldest_pending_age_seconds") < 600
    lag = sample(gauges, "portal_flux_watch_lag_seconds", cluster="hz-fsn-rtz-prod")
    assert 42 <= lag < 600
    assert sample(gauges, "portal_flux_cluster_connected", cluster="hz-fsn-rtz-prod") == 1
