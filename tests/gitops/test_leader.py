"""`watch_flux` active/standby: one leader per cluster through a fenced lease (gitops/leader.py).

Two real `manage.py watch_flux` processes against the apiserver emulator: the standby writes
nothing; killing the leader (SIGKILL) hands the lease to the standby within the lease, and status
keeps flowing; a leader that stalled past its lease (SIGSTOP) and wakes up after the takeover
writes nothing (its token is stale) and stands by. In-process: a deposed holder's writes are
refused by the token, and a takeover waits for the leader's write in flight (PostgreSQL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections, transaction
from django.utils import timezone

from gitops import flux, leader, store
from gitops.models import FluxCluster, FluxObject, Lease
from tests import serving

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
LEASE, RENEW = 4, 1
# How late a takeover may come on a loaded 2-core machine beyond lease + renew interval.
SLACK = 6.0


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `predicate` (reads the database) until it is truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        pause.wait(0.1)


def holder_of(proc: subprocess.Popen[bytes]) -> str:
    return f"{socket.gethostname()}:{proc.pid}"


def lease_holder() -> str:
    row = Lease.objects.filter(name=flux.lease_name("hz-fsn-rtz-prod")).first()
    return row.holder if row else ""


class Watchers:
    """Start `manage.py watch_flux` processes on the emulator; all are killed at teardown."""

    def __init__(self, kubeconfig: Path, tmp: Path) -> None:
        self.kubeconfig, self.tmp = kubeconfig, tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        log = self.tmp / f"watcher-{n}.log"
        env = {
            **os.environ,
            "DATABASE_URL": serving.test_database_url(f"portal-watch-flux-test-{n}"),
            "PORTAL_VAR_DIR": str(self.tmp / f"var-{n}"),
            "SECRET_KEY": django_settings.SECRET_KEY,
            "FLUX_KUBECONFIG": str(self.kubeconfig),
            "FLUX_CONTEXTS": "hz-fsn-rtz-prod=emu",
            "FLUX_LEASE_SECONDS": str(LEASE),
            "FLUX_LEASE_RENEW_SECONDS": str(RENEW),
            "FLUX_HEARTBEAT_SECONDS": "1",
            "FLUX_BACKOFF_BASE_MS": "50",
            "FLUX_BACKOFF_MAX_SECONDS": "1",
            "FLUX_WATCH_EVENTS": "false",
            "EVENTS_STREAM_KEY": django_settings.EVENTS_STREAM_KEY,
            "LOG_LEVEL": "INFO",
        }
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "watch_flux"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc.log = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    @staticmethod
    def output(proc: subprocess.Popen[bytes]) -> str:
        return Path(proc.log).read_text(errors="replace")  # type: ignore[attr-defined]

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
            proc.wait(timeout=30)


@pytest.fixture
def watchers(kube: Any, tmp_path: Path) -> Iterator[Watchers]:
    started = Watchers(kube.kubeconfig(tmp_path / "kubeconfig", context="emu"), tmp_path)
    yield started
    started.stop_all()


def test_standby_takes_over_when_the_leader_is_killed_and_a_stale_leader_writes_nothing(
    kube: Any, fluxd: Any, watchers: Watchers
) -> None:
    fluxd.create("Kustomization", "acme", labels={"openova.io/organization": "acme"})
    first = watchers.start()
    wait_for(lambda: lease_holder() == holder_of(first), "the first watcher to lead")
    wait_for(
        lambda: (
            FluxObject.objects.filter(name="acme").exists()
            and FluxCluster.objects.filter(watcher=holder_of(first), connected=True).exists()
        ),
        "the leader to store the Kustomization and its heartbeat",
    )

    second = watchers.start()
    wait_for(lambda: "standing by" in watchers.output(second), "the second watcher to stand by")
    assert lease_holder() == holder_of(first)
    token = Lease.objects.get().token

    # the leader dies without a word: the standby takes the lease within the lease
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    killed = time.monotonic()
    wait_for(lambda: lease_holder() == holder_of(second), "the standby to take over")
    took = time.monotonic() - killed
    assert took <= LEASE + RENEW + SLACK, f"took over after {took:.1f} s"
    assert Lease.objects.get().token == token + 1

    # ... and status keeps flowing, written by the new leader
    fluxd.ready("Kustomization", "acme", "main@sha1:" + "a" * 40)
    wait_for(
        lambda: FluxObject.objects.filter(name="acme", ready_status="True").exists(),
        "the new leader to store Ready=True",
    )
    wait_for(
        lambda: FluxCluster.objects.filter(watcher=holder_of(second), connected=True).exists(),
        "the new leader's heartbeat",
    )

    # a third stands by; the leader stalls (SIGSTOP) past its lease and is replaced
    third = watchers.start()
    wait_for(lambda: "standing by" in watchers.output(third), "the third watcher to stand by")
    second.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: lease_holder() == holder_of(third), "the third watcher to take over")
        fluxd.progressing("Kustomization", "acme", "main@sha1:" + "b" * 40)
        wait_for(
            lambda: (
                FluxObject.objects.filter(name="acme", ready_status="Unknown").exists()
                and FluxCluster.objects.filter(watcher=holder_of(third)).exists()
            ),
            "the third watcher to store the change",
        )
        stale = FluxObject.objects.get(name="acme").resource_version
    finally:
        second.send_signal(signal.SIGCONT)
    # the stale leader wakes: its renewal or its next write finds the token taken, and it stands by
    wait_for(
        lambda: "is stale" in watchers.output(second),
        "the stale leader to find its token stale",
    )
    wait_for(
        lambda: (
            watchers.output(second).count("standing by") >= 1
            and "no longer the leader" in watchers.output(second)
        ),
        "the stale leader to stand by again",
    )
    assert second.poll() is None, "the stale leader should stay up, on standby"
    assert lease_holder() == holder_of(third)
    assert FluxCluster.objects.get(name="hz-fsn-rtz-prod").watcher == holder_of(third)
    assert FluxObject.objects.get(name="acme").resource_version >= stale

    # status still flows through the third
    fluxd.ready("Kustomization", "acme", "main@sha1:" + "c" * 40)
    wait_for(
        lambda: FluxObject.objects.filter(
            name="acme", ready_status="True", applied_revision__endswith="c" * 40
        ).exists(),
        "the third watcher to store the next change",
    )
    assert FluxCluster.objects.get(name="hz-fsn-rtz-prod").watcher == holder_of(third)


def _kustomization(name: str, rv: int, ready: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "flux-system", "name": name, "resourceVersion": str(rv)},
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "R"}]},
    }


def test_a_deposed_holders_writes_are_refused_by_its_token(settings: Any) -> None:
    name = flux.lease_name("hz-fsn-rtz-prod")
    old = leader.Elector(name, holder="old:1", lease_seconds=30, renew_seconds=10)
    new = leader.Elector(name, holder="new:2", lease_seconds=30, renew_seconds=10)
    fence = old.try_acquire()
    assert fence is not None and fence.token == 1
    assert new.try_acquire() is None  # held
    store.apply("c1", "Kustomization", "ADDED", _kustomization("acme", 10, "Unknown"), fence=fence)
    flux.Heartbeat("c1", fence).connected()
    assert FluxCluster.objects.get(name="c1").connected

    # the old holder stalls past its lease (its expiry is in the past) and is replaced
    Lease.objects.filter(name=name).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = new.try_acquire()
    assert taken is not None and taken.token == 2

    with pytest.raises(leader.Deposed, match="token 1 of old:1 is stale"):
        store.apply(
            "c1", "Kustomization", "MODIFIED", _kustomization("acme", 11, "False"), fence=fence
        )
    with pytest.raises(leader.Deposed):
        store.reconcile_list(
            "c1", "Kustomization", [_kustomization("acme", 12, "False")], 12, fence=fence
        )
    with pytest.raises(leader.Deposed):
        flux.Heartbeat("c1", fence).lost("stale")
    assert fence.deposed.is_set()
    stored = FluxObject.objects.get(name="acme")
    assert (stored.resource_version, stored.ready_status) == (10, "Unknown")
    assert FluxCluster.objects.get(name="c1").connected
    assert not old.renew(fence)  # nor can it extend a lease that is no longer its own
    old.release(fence)  # and releasing it is a no-op
    assert Lease.objects.get(name=name).holder == "new:2"

    store.apply("c1", "Kustomization", "MODIFIED", _kustomization("acme", 11, "True"), fence=taken)
    assert FluxObject.objects.get(name="acme").ready_status == "True"
    new.release(taken)
    assert Lease.objects.get(name=name).holder == ""
    again = old.try_acquire()
    assert again is not None and again.token == 3


@pytest.mark.postgres
def test_a_takeover_waits_for_the_leaders_write_in_flight() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    name = "flux-watch:race"
    old = leader.Elector(name, holder="old:1", lease_seconds=30, renew_seconds=10)
    new = leader.Elector(name, holder="new:2", lease_seconds=30, renew_seconds=10)
    fence = old.try_acquire()
    assert fence is not None
    Lease.objects.filter(name=name).update(expires_at=timezone.now() - timedelta(seconds=1))
    checked, finish = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def leader_writes() -> None:
        try:
            with transaction.atomic():
                fence.check()  # passes: nobody has taken the lease yet
                checked.set()
                FluxCluster.objects.create(name="written-by-old")
                finish.wait(30)
            outcome["committed"] = True
        finally:
            connections.close_all()

    writer = threading.Thread(target=leader_writes)
    writer.start()
    assert checked.wait(30)
    taker = threading.Thread(target=lambda: outcome.setdefault("taken", new.try_acquire()))
    taker.start()

    def takeover_blocked() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'UPDATE %%gitops_lease%%'"
            )
            return bool(cursor.fetchone()[0])

    wait_for(takeover_blocked, "the takeover to wait on the leader's transaction")
    assert "taken" not in outcome
    finish.set()
    writer.join(30)
    taker.join(30)
    assert outcome["committed"] and outcome["taken"].token == 2
    assert FluxCluster.objects.filter(name="written-by-old").exists()
    with pytest.raises(leader.Deposed), transaction.atomic():
        fence.check()
