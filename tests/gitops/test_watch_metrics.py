"""A process without a web server (`watch_flux`, a Celery worker) serves its metrics on
PORTAL_METRICS_PORT (core/metrics.serve_exporter), with the same access rule as /metrics."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core import metrics
from gitops.models import FluxObject
from tests.core.test_metrics import TOKEN, sample
from tests.serving import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_watchers_exporter_counts_stored_events_and_reports_the_watch_lag(
    settings: Any, kube: Any, fluxd: Any, changes: Any, start_watcher: Any
) -> None:
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_NETWORKS = []
    exporter = metrics.serve_exporter(port=free_port(), host="127.0.0.1")
    assert exporter is not None
    url = f"http://127.0.0.1:{exporter.server_port}/metrics"
    try:
        assert httpx.get(url, timeout=10).status_code == 401
        assert (
            httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
        )

        def scrape() -> str:
            response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
            assert response.status_code == 200
            return response.text

        fluxd.create("Kustomization", "acme", labels={"openova.io/organization": "acme"})
        start_watcher("hz-fsn-rtz-prod")
        changes.wait(lambda: FluxObject.objects.filter(name="acme").exists())
        before = scrape()
        fluxd.ready("Kustomization", "acme", "main@sha1:" + "a" * 40)
        changes.wait(lambda: FluxObject.objects.filter(name="acme", ready_status="True").exists())
        after = scrape()
        labels = {"cluster": "hz-fsn-rtz-prod", "kind": "Kustomization"}
        assert sample(after, "portal_flux_watch_events_total", **labels) > sample(
            before, "portal_flux_watch_events_total", **labels
        )
        assert sample(after, "portal_flux_cluster_connected", cluster="hz-fsn-rtz-prod") == 1
        # healthy: heard from within a few heartbeats (FLUX_HEARTBEAT_SECONDS=1 here)
        assert 0 <= sample(after, "portal_flux_watch_lag_seconds", cluster="hz-fsn-rtz-prod") < 30
    finally:
        exporter.shutdown()
        exporter.server_close()
