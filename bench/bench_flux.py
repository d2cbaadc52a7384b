"""Live status: Flux event → browser SSE stream, SSE memory, relist.

1. Latency from a change in the Kubernetes API emulator to 200 connected SSE clients (uvicorn on
   loopback, the watcher in the same process: the embedded set-up), p95 over every client and
   event; beside the same event read directly from the emulator's watch stream.
2. RSS the server process adds for 500 idle SSE clients.
3. Relist of 5,000 objects into an empty store (and again, unchanged); beside the bare list call.

Run: `make bench` or `python -m bench bench_flux`. Clients run in a child process so they do
not share the server's interpreter.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, p95, report, setup_django, throwaway_database

CLIENTS = 200
IDLE_CLIENTS = 500
EVENTS = 40
RELIST_OBJECTS = 5000
CONNECTING = 20  # clients in the middle of connecting at once
MARK = re.compile(rb"bench-(\d+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- SSE clients (child process) ---------------------------------------------------------------
async def _client(
    port: int,
    path: str,
    cookie: str,
    seen: dict[int, list[float]],
    ready: asyncio.Event,
    counter: list[int],
    total: int,
    stop: asyncio.Event,
    connecting: asyncio.Semaphore,
) -> None:
    await connecting.acquire()  # browsers arrive over time, not 500 in the same millisecond
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={cookie}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    buffer, connected = b"", False
    while not stop.is_set():
        try:
            data = await asyncio.wait_for(reader.read(65536), 0.5)
        except TimeoutError:
            continue
        if not data:
            break
        now = time.time()
        buffer = buffer[-64:] + data
        if not connected and b"org-status" in buffer:
            connected = True
            connecting.release()
            counter[0] += 1
            if counter[0] == total:
                ready.set()
        for number in {int(m[1]) for m in MARK.finditer(data)}:
            seen.setdefault(number, []).append(now)
    writer.close()


def _clients_main(port: int, path: str, cookie: str, total: int, conn: Any) -> None:
    async def run() -> None:
        seen: dict[int, list[float]] = {}
        ready, stop, counter = asyncio.Event(), asyncio.Event(), [0]
        connecting = asyncio.Semaphore(CONNECTING)
        tasks = [
            asyncio.create_task(
                _client(port, path, cookie, seen, ready, counter, total, stop, connecting)
            )
            for _ in range(total)
        ]
        await asyncio.wait_for(ready.wait(), 120)
        conn.send("ready")
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.send(seen)

    asyncio.run(run())


# -- the bench ---------------------------------------------------------------------------------
def _serve(port: int) -> Any:
    import uvicorn

    config = uvicorn.Config(
        "catalyst_portal.asgi:application",
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        backlog=2048,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread


def _direct_watch(kube: Any, arrivals: dict[int, float], stop: threading.Event) -> threading.Thread:
    """The baseline: the same events read straight from the emulator's watch stream."""
    from kubernetes import client
    from kubernetes.watch.watch import iter_resp_lines

    api = client.CustomObjectsApi(kube.api_client())

    def run() -> None:
        resp = api.list_cluster_custom_object(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "kustomizations",
            watch=True,
            resource_version=str(kube.store.rv),
            timeout_seconds=600,
            _preload_content=False,
        )
        for line in iter_resp_lines(resp):
            now = time.time()
            for m in MARK.finditer(line.encode()):
                arrivals.setdefault(int(m[1]), now)
            if stop.is_set():
                break
        resp.release_conn()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _setup_org() -> tuple[Any, str]:
    from django.test import Client

    from orgs import services
    from orgs.models import HostCluster, Organization, Sovereign
    from tests.conftest import make_user

    sov = Sovereign.objects.create(fqdn="bench.local", currency="OMR")
    HostCluster.objects.create(
        sovereign=sov, provider="hetzner", region="fsn", building_block="rtz", env_type="prod"
    )
    owner = make_user("bench-owner")
    org = services.create_organization(by=owner, slug="bench", display_name="Bench")
    org = Organization.objects.get(pk=org.pk)
    client = Client()
    client.force_login(owner)
    return org, client.cookies["sessionid"].value


def _latency(kube: Any, fluxd: Any, port: int, cookie: str, changes: Any) -> None:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(
        target=_clients_main,
        args=(port, "/events/orgs/bench/", cookie, CLIENTS, child),
        daemon=True,
    )
    proc.start()
    assert parent.poll(180), "SSE clients did not connect"
    parent.recv()
    direct: dict[int, float] = {}
    stop = threading.Event()
    _direct_watch(kube, direct, stop)
    sent: dict[int, float] = {}
    for i in range(EVENTS):
        sent[i] = time.time()
        fluxd.dependency_not_ready("Kustomization", "bench", f"bench-{i}")
        changes.wait(lambda i=i: changes.count >= i + 1, 10)
        time.sleep(0.05)  # let the 200 streams drain before the next event
    time.sleep(0.5)
    stop.set()
    parent.send("stop")
    seen: dict[int, list[float]] = parent.recv()
    proc.join(10)
    latencies = [(t - sent[i]) * 1000 for i, times in seen.items() if i in sent for t in times]
    baseline = [(direct[i] - sent[i]) * 1000 for i in sent if i in direct]
    delivered = sum(len(t) for t in seen.values())
    print(
        f"  {CLIENTS} SSE clients, {EVENTS} events, {delivered}/{CLIENTS * EVENTS} deliveries",
        flush=True,
    )
    report(
        "event → SSE client p95",
        p95(latencies),
        target=250,
        baseline=p95(baseline),
        baseline_name="direct watch p95",
    )
    report(
        "event → SSE client median",
        sorted(latencies)[len(latencies) // 2],
        baseline=sorted(baseline)[len(baseline) // 2],
        baseline_name="direct watch median",
    )


def _idle_memory(port: int, cookie: str) -> None:
    from gitops import events

    before = _rss_mb()
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(
        target=_clients_main,
        args=(port, "/events/orgs/bench/", cookie, IDLE_CLIENTS, child),
        daemon=True,
    )
    proc.start()
    assert parent.poll(300), "idle SSE clients did not connect"
    parent.recv()
    after = _rss_mb()
    subscribers = events.broker().subscriber_count()
    parent.send("stop")
    parent.recv()
    proc.join(10)
    print(f"  {subscribers} subscribed streams", flush=True)
    report(f"RSS added by {IDLE_CLIENTS} idle SSE clients", after - before, unit="MB", target=150)


def _relist(kube: Any, fluxd: Any) -> None:
    from kubernetes import client

    from gitops import flux
    from gitops.models import FluxObject

    for i in range(RELIST_OBJECTS):
        fluxd.create("Kustomization", f"relist-{i}", labels={"openova.io/organization": f"o{i}"})
        fluxd.ready("Kustomization", f"relist-{i}", "main@sha1:" + f"{i:040x}")
    api = kube.api_client()
    custom = client.CustomObjectsApi(api)
    start = time.perf_counter()
    listed = custom.list_cluster_custom_object(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "kustomizations",
        label_selector="openova.io/managed-by=flux",
    )
    bare = (time.perf_counter() - start) * 1000
    watcher = flux.KindWatcher(
        "bench-relist",
        api,
        flux.KINDS[0],
        stop=threading.Event(),
        heartbeat=flux.Heartbeat("bench-relist"),
        label_selector="openova.io/managed-by=flux",
        timeout_seconds=60,
        backoff=flux.Backoff(1, 1),
    )
    start = time.perf_counter()
    watcher.relist()
    first = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    watcher.relist()
    again = (time.perf_counter() - start) * 1000
    stored = FluxObject.objects.filter(cluster="bench-relist").count()
    print(f"  {len(listed['items'])} objects listed, {stored} stored", flush=True)
    report(
        f"relist {RELIST_OBJECTS} objects into an empty store",
        first,
        target=2000,
        baseline=bare,
        baseline_name="bare list call",
    )
    report(
        f"relist {RELIST_OBJECTS} unchanged objects",
        again,
        target=2000,
        baseline=bare,
        baseline_name="bare list call",
    )


def main() -> None:
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ.setdefault("PORTAL_VAR_DIR", tmp)
        os.environ.setdefault("GIT_ROOT", str(Path(tmp) / "git"))
        os.environ.setdefault("SSE_KEEPALIVE_SECONDS", "15")
        os.environ.setdefault("PORTAL_TASKS_EAGER", "true")  # commit the org without a worker
        setup_django()
        from django.conf import settings

        settings.ALLOWED_HOSTS = ["*"]
        from gitops import events, flux
        from gitops.kubesim import Flux, KubeEmulator
        from tests.gitops.conftest import Changes

        events.reset()
        with throwaway_database(), KubeEmulator(bookmark_seconds=30) as kube:
            fluxd = Flux(kube)
            _org, cookie = _setup_org()
            fluxd.create("Kustomization", "bench", labels={"openova.io/organization": "bench"})
            changes = Changes()
            changes.count = 0  # type: ignore[attr-defined]

            def count(objs: list[Any]) -> None:
                changes.count += sum(o.name == "bench" for o in objs)  # type: ignore[attr-defined]
                changes(objs)

            stop = threading.Event()
            watcher = flux.ClusterWatcher(
                "bench", kube.api_client(), stop=stop, kinds=flux.KINDS[:1]
            )
            flux.register_handler(count)
            threading.Thread(target=watcher.run, daemon=True).start()
            changes.wait(lambda: changes.count >= 1, 10)
            changes.count = 0  # type: ignore[attr-defined]
            port = _free_port()
            server, thread = _serve(port)
            try:
                _latency(kube, fluxd, port, cookie, changes)
                _idle_memory(port, cookie)
            finally:
                server.should_exit = True
                thread.join(10)
                stop.set()
            _relist(kube, fluxd)
            flux.unregister_handler(count)


if __name__ == "__main__":
    main()
