"""`manage.py watch_flux` reads a kubeconfig context from settings and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import threading

import pytest
from django.core.management import call_command
from django.db import connection

from gitops import flux
from gitops.models import FluxCluster, FluxObject

pytestmark = pytest.mark.django_db(transaction=True)


def test_watch_flux_uses_the_kubeconfig_context_and_stops_on_sigterm(
    kube, fluxd, changes, settings, tmp_path
):
    settings.FLUX_KUBECONFIG = str(kube.kubeconfig(tmp_path / "kubeconfig", context="emu"))
    settings.FLUX_CONTEXTS = ["hz-fsn-rtz-prod=emu"]
    fluxd.create("Kustomization", "acme", labels={"openova.io/organization": "acme"})
    outcome: dict[str, object] = {}
    returned = threading.Event()
    main = threading.get_ident()

    def terminate_when_stored() -> None:
        try:
            changes.wait(lambda: FluxObject.objects.filter(name="acme").exists())
        finally:
            connection.close()  # this thread's pooled connection goes back before it ends
            # the kernel hands a process's SIGTERM to any thread: here, to this one
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
            if not returned.wait(10):  # unnoticed: wake the command the way that always works
                outcome["missed_sigterm"] = True
                signal.pthread_kill(main, signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    killer = threading.Thread(target=terminate_when_stored)
    killer.start()
    try:
        call_command("watch_flux")
        outcome["returned"] = True
        returned.set()
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
        killer.join(timeout=15)
    assert outcome == {"returned": True}
    stored = FluxObject.objects.get(name="acme")
    assert stored.cluster == "hz-fsn-rtz-prod" and stored.kind == "Kustomization"
    assert FluxCluster.objects.get(name="hz-fsn-rtz-prod").connected


def test_targets_from_settings(settings):
    settings.FLUX_IN_CLUSTER = False
    settings.FLUX_KUBECONFIG = "/etc/kube/config"
    settings.FLUX_CONTEXTS = ["hz-fsn-rtz-prod=admin@fsn", "hel"]
    assert flux.targets() == [
        flux.Target("hz-fsn-rtz-prod", context="admin@fsn", kubeconfig="/etc/kube/config"),
        flux.Target("hel", context="hel", kubeconfig="/etc/kube/config"),
    ]
    settings.FLUX_IN_CLUSTER = True
    settings.FLUX_CLUSTER_NAME = "mgmt"
    assert flux.targets() == [flux.Target("mgmt", in_cluster=True)]


def test_backoff_is_capped_exponential_with_full_jitter():
    import random

    backoff = flux.Backoff(0.5, 4, rng=random.Random(7))
    delays = [backoff.next() for _ in range(10)]
    ceilings = [min(4, 0.5 * 2**i) for i in range(10)]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays[5:]) <= 4 and len(set(delays)) == 10
    backoff.reset()
    assert backoff.next() <= 0.5
