"""`manage.py watch_flux`: watch Flux on one cluster (or supervise one child per context).

Run it on several nodes for high availability: the watchers of one cluster elect a leader through
a fenced lease (gitops/leader.py); the others stand by and take over within
FLUX_LEASE_SECONDS + FLUX_LEASE_RENEW_SECONDS of the leader's death.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core import metrics
from gitops import flux

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Watch Flux Kustomizations, HelmReleases and GitRepositories and store their status. "
        "One process per cluster: with several FLUX_CONTEXTS and no --context, one child "
        "process is started per context. Several processes of one cluster elect a leader "
        "(the others stand by). Stops cleanly on SIGTERM (releasing the lease)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--context", help="watch only this kubeconfig context")

    def handle(self, *args: Any, **opts: Any) -> None:
        targets = flux.targets()
        if opts["context"]:
            chosen = [t for t in targets if opts["context"] in (t.context, t.name)]
            if not chosen:
                chosen = [
                    flux.Target(
                        opts["context"], context=opts["context"], kubeconfig=targets[0].kubeconfig
                    )
                ]
            targets = chosen
        if len(targets) > 1:
            self._supervise(targets)
            return
        metrics.serve_exporter()  # PORTAL_METRICS_PORT: one port per process (not per child)
        target = targets[0]
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        try:
            api = target.api_client()
        except Exception as exc:
            raise CommandError(
                f"cannot load the cluster configuration of {target.name}: {exc}"
            ) from exc
        self.stdout.write(
            f"watching Flux on {target.name} ({settings.FLUX_LABEL_SELECTOR}) once elected"
        )
        flux.watch_elected(target.name, api, stop=stop)

    def _supervise(self, targets: list[flux.Target]) -> None:
        children = [
            subprocess.Popen(
                [sys.executable, sys.argv[0], "watch_flux", "--context", t.context or t.name]
            )
            for t in targets
        ]
        stop = threading.Event()

        def forward(*_: Any) -> None:
            stop.set()
            for child in children:
                if child.poll() is None:
                    child.terminate()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, forward)
        codes = [child.wait() for child in children]
        if not stop.is_set() and any(codes):
            raise CommandError(f"a watcher exited with {codes}")
