"""Prometheus metrics (prometheus_client): what the portal counts, and who may read them.

The contract:
- The metrics are defined here, once; the apps observe them (core imports no app). Names:
  `portal_http_requests_total` / `portal_http_request_duration_seconds` (by method, route — the
  URL pattern, never the raw path, so the label set stays bounded — and status),
  `portal_tasks_total` / `portal_task_latency_seconds` (an outbox row's creation, i.e. the user's
  action, to its delivery done) / `portal_task_duration_seconds` (one attempt),
  `portal_git_commit_duration_seconds` (one commit: trees written and the branch moved) and
  `portal_flux_watch_events_total`.
- What the database knows is read at scrape time rather than counted by one process: outbox depth
  (`portal_outbox_pending`, `portal_outbox_retrying`), the age of the oldest pending row
  (`portal_outbox_oldest_pending_age_seconds`), and per cluster the watch lag — how long since the
  watcher last heard from the apiserver (`portal_flux_watch_lag_seconds`) — and whether it is
  connected. They are exact whichever process is scraped, and need no process to stay alive.
- Several processes: with `PROMETHEUS_MULTIPROC_DIR` set, prometheus_client writes each
  process's values to files there and a scrape adds them up (counters and histograms of every
  process that wrote since the directory was emptied). `manage.py serve` with more than one
  uvicorn worker creates (and removes) such a directory itself when none is set.
- Who may read them (`allowed`): a request carrying `Authorization: Bearer <PORTAL_METRICS_TOKEN>`,
  or coming from one of `PORTAL_METRICS_NETWORKS` (default loopback; the client address as
  `core.middleware.client_ip` sees it). Anyone else gets 401 when a token is configured, else 404.
- Processes without a web server (Celery worker, `watch_flux`) serve the same exposition on
  `PORTAL_METRICS_PORT` when it is set (`serve_exporter`, same access rule).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "portal_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "portal_http_request_duration_seconds",
    "Time to answer an HTTP request (to the first byte of a stream)",
    ["method", "route"],
)
TASKS = Counter("portal_tasks_total", "Outbox deliveries run, by outcome", ["task", "outcome"])
TASK_LATENCY = Histogram(
    "portal_task_latency_seconds",
    "From an outbox row's creation (the action) to its delivery done",
    ["task"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
TASK_SECONDS = Histogram(
    "portal_task_duration_seconds", "Run time of one delivery attempt", ["task", "outcome"]
)
GIT_COMMIT_SECONDS = Histogram(
    "portal_git_commit_duration_seconds",
    "One Git commit (trees written, branch moved), by repository kind and outcome",
    ["repo", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FLUX_EVENTS = Counter(
    "portal_flux_watch_events_total", "Watch events the Flux watcher stored", ["cluster", "kind"]
)

PROBES = ("/healthz", "/readyz", "/metrics")


def route_of(request: Any) -> str:
    """The URL pattern that answered (`orgs/<slug:slug>/`), a probe's path, or `<unmatched>`."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        return str(match.route)
    path = getattr(request, "path_info", "")
    return path if path in PROBES else "<unmatched>"


def observe_request(request: Any, status: int, seconds: float) -> None:
    route = route_of(request)
    REQUESTS.labels(request.method, route, str(status)).inc()
    REQUEST_SECONDS.labels(request.method, route).observe(seconds)


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    """Observe the block's duration with `labels` and an outcome label: ok, or error."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        histogram.labels(*labels, outcome).observe(time.perf_counter() - started)


class DatabaseCollector(Collector):
    """Gauges read from the database when scraped (`gauges`); a database that cannot be read
    leaves them out of the scrape instead of failing it."""

    def gauges(self) -> list[GaugeMetricFamily]:
        raise NotImplementedError

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            found = self.gauges()
        except Exception as exc:
            log.warning("metrics: %s cannot read the database (%s)", type(self).__name__, exc)
            return
        yield from found


class OutboxCollector(DatabaseCollector):
    """Outbox depth, retrying rows and the age of the oldest pending row."""

    def gauges(self) -> list[GaugeMetricFamily]:
        from core.models import OutboxItem

        now = timezone.now()
        pending = OutboxItem.objects.pending()
        depth = pending.count()
        retrying = pending.exclude(last_error="").count()
        oldest = pending.aggregate(at=Min("created_at"))["at"]
        return [
            GaugeMetricFamily("portal_outbox_pending", "Outbox rows not delivered yet", depth),
            GaugeMetricFamily(
                "portal_outbox_retrying", "Pending outbox rows whose last attempt failed", retrying
            ),
            GaugeMetricFamily(
                "portal_outbox_oldest_pending_age_seconds",
                "Age of the oldest pending outbox row (0 when none)",
                (now - oldest).total_seconds() if oldest else 0.0,
            ),
        ]


_collectors: list[Collector] = [OutboxCollector()]


def register(collector: Collector) -> None:
    """Add gauges read at scrape time (from an app's `ready()`)."""
    if all(type(c) is not type(collector) for c in _collectors):
        _collectors.append(collector)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def use_multiprocess_dir(path: str) -> None:
    """Switch this process (and the processes it forks or spawns from now on) to multiprocess
    mode writing under `path`. Call it before any metric has a value, e.g. in a Celery worker
    before its pool forks: every metric here has labels, so a value is made at its first
    `.labels()` and takes the value class in force then."""
    from prometheus_client import values

    os.makedirs(path, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    values.ValueClass = values.get_value_class()


def exposition() -> bytes:
    """The text exposition: this process's metrics (or every process's, in multiprocess mode),
    then the gauges read from the database."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    database = CollectorRegistry(auto_describe=False)
    for collector in _collectors:
        database.register(collector)
    return generate_latest(registry) + generate_latest(database)


CONTENT_TYPE = CONTENT_TYPE_LATEST


def _internal(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in settings.METRICS_NETWORKS)


def allowed(authorization: str, address: str | None) -> bool:
    """A scrape with the configured bearer token, or from an internal network."""
    token = settings.METRICS_TOKEN
    if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    return _internal(address)


def refusal_status() -> int:
    """401 when a token would let the caller in, else 404 (the endpoint is not public)."""
    return 401 if settings.METRICS_TOKEN else 404


# --- an exporter for processes that serve no HTTP (Celery worker, watch_flux) ----------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        pass


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    if not allowed(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR")):
        status = refusal_status()
        start_response(f"{status} {'Unauthorized' if status == 401 else 'Not Found'}", [])
        return [b""]
    try:
        body = exposition()
    finally:
        connection.close()  # this thread's connection back to the pool
    start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
    return [body]


def serve_exporter(port: int | None = None, host: str | None = None) -> WSGIServer | None:
    """Serve /metrics on `PORTAL_METRICS_PORT` in a daemon thread (None when it is unset)."""
    port = settings.METRICS_PORT if port is None else port
    if not port:
        return None
    server = make_server(host or settings.METRICS_HOST, port, _app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True).start()
    log.info("metrics on http://%s:%s/metrics", host or settings.METRICS_HOST, port)
    return server
