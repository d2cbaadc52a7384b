"""Watch Flux on each cluster and store what it reports (SPEC §2: event-driven reads).

Per cluster and kind (Kustomization, HelmRelease, GitRepository), filtered by the portal's label
selector: list, then watch from the list's resourceVersion with bookmarks; resume from the last
resourceVersion after a disconnect; on 410 Expired list again (objects missing from the new list
were deleted while we were away); reconnect with capped exponential backoff and full jitter.
Every stored change calls the handlers registered with `register_handler` (domain apps map Flux
objects onto their own objects there). A heartbeat row per cluster (FluxCluster) says when the
watcher last heard from the apiserver, so pages can say "connection lost since …".
A watch thread borrows a pooled database connection only to store what it read, never while it
waits on the apiserver (six kinds a cluster would otherwise pin six of the pool's connections).

Active/standby (`watch_elected`, what `manage.py watch_flux` runs): several watchers of one cluster
elect a leader through a lease with a fencing token (gitops/leader.py). Only the leader watches and
writes; every write it makes (objects, events, the heartbeat row) checks its token in the write's
transaction, so a leader that was replaced while it stalled has its writes refused and stands by
again. The status handlers run after a stored change and re-read what is stored (level-triggered):
they need no fence of their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from core import dbconn, metrics

from . import events, leader, store
from .models import FluxCluster, rv_int

log = logging.getLogger(__name__)

register_handler = store.register_handler
unregister_handler = store.unregister_handler


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    involved: str = ""  # core/v1 Events recorded for objects of this kind

    @property
    def is_events(self) -> bool:
        return bool(self.involved)

    @property
    def name(self) -> str:
        return f"Event/{self.involved}" if self.involved else self.kind


KINDS = (
    Kind("Kustomization", "kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    Kind("HelmRelease", "helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    Kind("GitRepository", "source.toolkit.fluxcd.io", "v1", "gitrepositories"),
)
# The Events Flux controllers record (`involvedObject.kind=<Flux kind>`): what the object went
# through, shown on the Application page.
EVENT_KINDS = tuple(Kind("Event", "", "v1", "events", involved=k.kind) for k in KINDS)


def watched_kinds() -> tuple[Kind, ...]:
    return KINDS + (EVENT_KINDS if settings.FLUX_WATCH_EVENTS else ())


CLUSTERS_TOPIC = "flux:clusters"


class Expired(Exception):
    """The resourceVersion we watch from is too old (HTTP 410): list again."""


@dataclass(frozen=True)
class Target:
    """One cluster connection: a kubeconfig context, or the in-cluster service account."""

    name: str
    context: str | None = None
    in_cluster: bool = False
    kubeconfig: str | None = None

    def api_client(self) -> Any:
        from kubernetes import client, config

        if self.in_cluster:
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
            return client.ApiClient(cfg)
        return config.new_client_from_config(
            config_file=self.kubeconfig or None, context=self.context, persist_config=False
        )


def targets() -> list[Target]:
    """The clusters to watch, from settings: FLUX_IN_CLUSTER, or FLUX_CONTEXTS entries
    `context` / `cluster-name=context` (empty: the kubeconfig's current context)."""
    kubeconfig = settings.FLUX_KUBECONFIG or None
    if settings.FLUX_IN_CLUSTER:
        return [Target(settings.FLUX_CLUSTER_NAME, in_cluster=True)]
    found = []
    for entry in settings.FLUX_CONTEXTS or [""]:
        name, _, context = entry.rpartition("=")
        context = context.strip()
        found.append(
            Target(
                (name or context or settings.FLUX_CLUSTER_NAME).strip(),
                context=context or None,
                kubeconfig=kubeconfig,
            )
        )
    return found


class Backoff:
    """Capped exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt))."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.attempt = base, cap, 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class Heartbeat:
    """Writes the FluxCluster row: connected/lost flips at once, contact times at most every
    FLUX_HEARTBEAT_SECONDS. A flip is also published on CLUSTERS_TOPIC."""

    def __init__(self, cluster: str, fence: leader.Fence | None = None) -> None:
        self.cluster = cluster
        self.fence = fence
        self.watcher = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._last_write: datetime | None = None
        self._connected: bool | None = None

    def _fenced(self) -> None:
        if self.fence is not None:
            self.fence.check()

    def _flip(self, connected: bool, error: str = "") -> None:
        now = timezone.now()
        with transaction.atomic():
            self._fenced()
            row, _ = FluxCluster.objects.get_or_create(name=self.cluster)
            values: dict[str, Any] = {"watcher": self.watcher, "last_error": error[:2000]}
            if connected:
                values.update(last_contact_at=now)
            if row.connected != connected:
                values.update(connected=connected, since=now)
            FluxCluster.objects.filter(pk=row.pk).update(**values)
        if row.connected != connected:
            events.publish(
                CLUSTERS_TOPIC,
                {"cluster": self.cluster, "connected": connected, "since": now.isoformat()},
            )

    def connected(self) -> None:
        with self._lock:
            if self._connected is not True:
                self._connected = True
                self._last_write = timezone.now()
                self._flip(True)
                return
        self.contact()

    def contact(self, *, event: bool = False) -> None:
        now = timezone.now()
        with self._lock:
            due = self._last_write is None or now - self._last_write >= timedelta(
                seconds=settings.FLUX_HEARTBEAT_SECONDS
            )
            if not (due or event):
                return
            self._last_write = now
        values: dict[str, Any] = {"last_contact_at": now}
        if event:
            values["last_event_at"] = now
        with transaction.atomic():
            self._fenced()
            FluxCluster.objects.filter(name=self.cluster).update(**values)

    def lost(self, error: str) -> None:
        # The row is written under the lock: a kind that connects while another loses the
        # cluster must not overwrite the other's flip (connected=False with an empty error).
        with self._lock:
            was = self._connected
            self._connected = False
            if was is not False:
                self._flip(False, error)


class WatchLagCollector(metrics.DatabaseCollector):
    """Per cluster, read when scraped: seconds since the watcher last heard from the apiserver
    (`portal_flux_watch_lag_seconds`: about FLUX_HEARTBEAT_SECONDS while healthy, growing while
    the watcher is dead or cut off) and whether it reports the cluster connected."""

    def gauges(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        now = timezone.now()
        lag = GaugeMetricFamily(
            "portal_flux_watch_lag_seconds",
            "Seconds since the Flux watcher last heard from the cluster's apiserver",
            labels=["cluster"],
        )
        up = GaugeMetricFamily(
            "portal_flux_cluster_connected",
            "1 while the Flux watcher reports the cluster connected",
            labels=["cluster"],
        )
        rows = FluxCluster.objects.values_list("name", "connected", "last_contact_at")
        for name, connected, contact in rows:
            if contact is not None:
                lag.add_metric([name], max(0.0, (now - contact).total_seconds()))
            up.add_metric([name], 1.0 if connected else 0.0)
        return [lag, up]


class KindWatcher:
    """List-then-watch loop for one kind on one cluster; runs until `stop` is set."""

    def __init__(
        self,
        cluster: str,
        api: Any,
        kind: Kind,
        *,
        stop: threading.Event,
        heartbeat: Heartbeat,
        label_selector: str,
        timeout_seconds: int,
        backoff: Backoff,
    ) -> None:
        from kubernetes import client

        self.cluster, self.kind = cluster, kind
        self.fence = heartbeat.fence
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.stop, self.heartbeat, self.backoff = stop, heartbeat, backoff
        self.selector, self.timeout = label_selector, timeout_seconds
        self._resp: Any = None
        self.relists = 0

    def _args(self) -> tuple[str, str, str]:
        return self.kind.group, self.kind.version, self.kind.plural

    def _list(self, **kwargs: Any) -> Any:
        """Custom objects by label selector; Events by the kind of the object they concern
        (raw JSON in both cases: `_preload_content=False` for Events)."""
        if self.kind.is_events:
            return self.core.list_event_for_all_namespaces(
                field_selector=f"involvedObject.kind={self.kind.involved}", **kwargs
            )
        return self.custom.list_cluster_custom_object(
            *self._args(), label_selector=self.selector, **kwargs
        )

    def _list_page(self, token: str) -> dict[str, Any]:
        timeout = (settings.FLUX_CONNECT_TIMEOUT_SECONDS, self.timeout)
        paging: dict[str, Any] = {"limit": settings.FLUX_LIST_PAGE_SIZE}
        if token:
            paging["_continue"] = token
        if self.kind.is_events:
            resp: Any = self._list(_preload_content=False, _request_timeout=timeout, **paging)
            return dict(json.loads(resp.data or b"{}"))
        return dict(self._list(_request_timeout=timeout, **paging))

    def relist(self) -> int:
        """List everything in pages of FLUX_LIST_PAGE_SIZE (`limit`/`continue`: the API server
        never builds one huge answer), store it, tombstone what is gone; the list's
        resourceVersion (every page is of the first page's snapshot). A continue token that
        expires mid-list answers 410: the caller lists again from the start."""
        from kubernetes.client.exceptions import ApiException

        items: list[dict[str, Any]] = []
        token, list_rv = "", 0
        while True:
            try:
                result = self._list_page(token)
            except ApiException as exc:
                if exc.status == 410 and token:
                    raise Expired("the list's continue token expired") from None
                raise
            self.heartbeat.connected()
            metadata = result.get("metadata") or {}
            if not token:
                list_rv = rv_int(metadata.get("resourceVersion")) or 0
            page = result.get("items") or []
            if self.kind.is_events:  # Events are recorded page by page (nothing is tombstoned)
                store.record_events(self.cluster, page, fence=self.fence)
            else:
                items += page
            dbconn.release()  # the next page is read from the apiserver
            token = metadata.get("continue") or ""
            if not token:
                break
            if self.stop.is_set():  # a partial list must not tombstone what it did not reach
                return list_rv
        self.relists += 1
        if not self.kind.is_events:
            store.reconcile_list(self.cluster, self.kind.kind, items, list_rv, fence=self.fence)
        dbconn.release()
        return list_rv

    def watch(self, rv: int) -> int:
        """Watch from `rv` until the server ends the stream; the newest resourceVersion seen."""
        from kubernetes.watch.watch import iter_resp_lines

        resp: Any = self._list(
            watch=True,
            resource_version=str(rv),
            allow_watch_bookmarks=True,
            timeout_seconds=self.timeout,
            _preload_content=False,
            _request_timeout=(settings.FLUX_CONNECT_TIMEOUT_SECONDS, self.timeout + 30),
        )
        self._resp = resp
        try:
            if self.stop.is_set():
                return rv
            self.heartbeat.connected()
            dbconn.release()
            for line in iter_resp_lines(resp):
                if not line.strip():
                    continue
                rv = self._handle(json.loads(line), rv)
                dbconn.release()  # not held while the stream waits for the next event
                if self.stop.is_set():
                    break
        finally:
            self._resp = None
            resp.release_conn()
        return rv

    def _handle(self, event: dict[str, Any], rv: int) -> int:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired(obj.get("message", "resourceVersion expired"))
            raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
        new_rv = rv_int((obj.get("metadata") or {}).get("resourceVersion"))
        if kind == "BOOKMARK":
            self.heartbeat.contact()
        elif self.kind.is_events and kind in ("ADDED", "MODIFIED"):
            # a deleted (expired) Event stays on record
            store.record_events(self.cluster, [obj], fence=self.fence)
            self.heartbeat.contact(event=True)
        elif not self.kind.is_events and kind in ("ADDED", "MODIFIED", "DELETED"):
            store.apply(self.cluster, self.kind.kind, kind, obj, fence=self.fence)
            metrics.FLUX_EVENTS.labels(self.cluster, self.kind.kind).inc()
            self.heartbeat.contact(event=True)
        return max(rv, new_rv or rv)

    def interrupt(self) -> None:
        resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):  # best effort: the stream is abandoned
                resp.shutdown()

    def _record_loss(self, error: str) -> None:
        """Mark the connection lost; the database may be the thing that failed, so reconnect
        it next time and never let the heartbeat kill the watch loop."""
        try:
            connection.close()
            self.heartbeat.lost(error)
        except leader.Deposed:
            self.stop.set()
        except Exception:
            log.exception("%s: cannot record the lost connection", self.cluster)
            with contextlib.suppress(Exception):
                connection.close()

    def run(self) -> None:
        from kubernetes.client.exceptions import ApiException

        rv: int | None = None
        resumed = False
        try:
            while not self.stop.is_set():
                try:
                    if not resumed:
                        rv = (
                            store.last_event_resource_version(self.cluster, self.kind.involved)
                            if self.kind.is_events
                            else store.last_resource_version(self.cluster, self.kind.kind)
                        )
                        resumed = True
                        dbconn.release()
                    if rv is None:
                        rv = self.relist()
                    started = time.monotonic()
                    rv = self.watch(rv)
                    if time.monotonic() - started >= 1:
                        self.backoff.reset()
                    else:  # a server that ends every watch at once must not make us spin
                        self.stop.wait(self.backoff.next())
                    continue
                except leader.Deposed as exc:
                    log.warning("%s %s: %s; stopping", self.cluster, self.kind.name, exc)
                    self.stop.set()
                    break
                except Expired:
                    log.info(
                        "%s %s: resourceVersion %s expired, relisting",
                        self.cluster,
                        self.kind.name,
                        rv,
                    )
                    rv = None
                    continue
                except ApiException as exc:
                    if exc.status == 410:
                        rv = None
                        continue
                    error = f"HTTP {exc.status}: {exc.reason}"
                except Exception as exc:
                    if self.stop.is_set():
                        break
                    error = f"{type(exc).__name__}: {exc}"
                delay = self.backoff.next()
                log.warning(
                    "%s %s: watch failed (%s); retrying in %.1fs",
                    self.cluster,
                    self.kind.name,
                    error,
                    delay,
                )
                self._record_loss(error)
                self.stop.wait(delay)
        finally:
            connection.close()


class ClusterWatcher:
    """All watched kinds of one cluster, one thread each, until `stop` is set."""

    def __init__(
        self,
        cluster: str,
        api: Any,
        *,
        stop: threading.Event | None = None,
        kinds: Iterable[Kind] | None = None,
        label_selector: str | None = None,
        timeout_seconds: int | None = None,
        backoff: Callable[[], Backoff] | None = None,
        fence: leader.Fence | None = None,
    ) -> None:
        self.cluster = cluster
        self.stop = stop or threading.Event()
        self.heartbeat = Heartbeat(cluster, fence)
        make_backoff = backoff or (
            lambda: Backoff(settings.FLUX_BACKOFF_BASE_MS / 1000, settings.FLUX_BACKOFF_MAX_SECONDS)
        )
        self.watchers = [
            KindWatcher(
                cluster,
                api,
                kind,
                stop=self.stop,
                heartbeat=self.heartbeat,
                label_selector=label_selector or settings.FLUX_LABEL_SELECTOR,
                timeout_seconds=timeout_seconds or settings.FLUX_WATCH_TIMEOUT_SECONDS,
                backoff=make_backoff(),
            )
            for kind in (watched_kinds() if kinds is None else kinds)
        ]

    def run(self) -> None:
        close_old_connections()
        threads = [
            threading.Thread(target=w.run, name=f"flux-{self.cluster}-{w.kind.name}", daemon=True)
            for w in self.watchers
        ]
        for thread in threads:
            thread.start()
        # wake every second: a SIGTERM the kernel hands to another thread only sets a flag, and
        # the main thread runs its handler (which sets `stop`) when it next runs Python code
        while not self.stop.wait(1.0):
            pass
        for w in self.watchers:
            w.interrupt()
        for thread in threads:
            thread.join(timeout=10)
        connection.close()
        log.info("%s: watcher stopped", self.cluster)


def lease_name(cluster: str) -> str:
    return f"flux-watch:{cluster}"


def watch_elected(
    cluster: str,
    api: Any,
    *,
    stop: threading.Event,
    elector: leader.Elector | None = None,
    **watcher_options: Any,
) -> None:
    """Active/standby: wait for the cluster's lease, watch while holding it (every write fenced by
    its token), stand by again when it is lost; release it on `stop`."""
    elector = elector or leader.Elector(lease_name(cluster))
    while not stop.is_set():
        fence = elector.acquire(stop)
        if fence is None:
            break
        term = threading.Event()  # ends this term: stop, a lost renewal, or a refused write
        keeper = threading.Thread(
            target=elector.keep, args=(fence, stop, term), name=f"lease-{cluster}", daemon=True
        )
        keeper.start()
        ClusterWatcher(cluster, api, stop=term, fence=fence, **watcher_options).run()
        keeper.join(timeout=elector.renew_seconds + 10)
        if not stop.is_set():
            log.warning("%s: no longer the leader (token %s); standing by", cluster, fence.token)
