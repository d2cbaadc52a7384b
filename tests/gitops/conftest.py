"""Fixtures for the Flux watch tests: the apiserver emulator, its Flux driver, watcher threads
and a way to wait for stored changes without sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gitops import flux
from gitops.kubesim import Flux, KubeEmulator


class Changes:
    """Wakes waiters whenever the watcher stores a change or a cluster connection flips."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seen: list[Any] = []

    def __call__(self, objs: list[Any]) -> None:
        with self.cond:
            self.seen.extend(objs)
            self.cond.notify_all()

    def poke(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {predicate.__doc__ or predicate}")
                self.cond.wait(min(left, 0.25))


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator(bookmark_seconds=0.2) as emulator:
        yield emulator


@pytest.fixture
def fluxd(kube: KubeEmulator) -> Flux:
    return Flux(kube)


@pytest.fixture
def changes(monkeypatch: Any) -> Iterator[Changes]:
    tracker = Changes()
    flux.register_handler(tracker)
    original = flux.Heartbeat._flip

    def flip(self: flux.Heartbeat, connected: bool, error: str = "") -> None:
        original(self, connected, error)
        tracker.poke()

    monkeypatch.setattr(flux.Heartbeat, "_flip", flip)
    yield tracker
    flux.unregister_handler(tracker)


@pytest.fixture
def start_watcher(
    kube: KubeEmulator, settings: Any
) -> Iterator[Callable[..., flux.ClusterWatcher]]:
    """Start a ClusterWatcher on the emulator in a thread; all are stopped at teardown."""
    settings.FLUX_HEARTBEAT_SECONDS = 1
    running: list[tuple[flux.ClusterWatcher, threading.Thread]] = []

    def start(cluster: str = "hz-fsn-rtz-prod", **kwargs: Any) -> flux.ClusterWatcher:
        watcher = flux.ClusterWatcher(
            cluster,
            kube.api_client(),
            timeout_seconds=kwargs.pop("timeout_seconds", 30),
            backoff=lambda: flux.Backoff(0.05, 0.2),
            **kwargs,
        )
        thread = threading.Thread(target=watcher.run, name=f"watcher-{cluster}", daemon=True)
        thread.start()
        running.append((watcher, thread))
        return watcher

    yield start
    for watcher, _thread in running:
        watcher.stop.set()
    for watcher, thread in running:
        thread.join(timeout=10)
        assert not thread.is_alive(), f"watcher {watcher.cluster} did not stop"
