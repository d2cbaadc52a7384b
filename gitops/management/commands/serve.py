from __future__ import annotations

import ctypes.util
import logging
import os
import shutil
import tempfile
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

log = logging.getLogger(__name__)


# The background threads borrow a pooled connection per round and return it before they sleep.
def _sweep_forever(stop: threading.Event) -> None:
    from core import dbconn, outbox

    while not stop.wait(settings.OUTBOX_SWEEP_INTERVAL_SECONDS):
        try:
            outbox.sweep()
        except Exception:
            log.exception("outbox sweep failed")
        finally:
            dbconn.release()


def _reconcile_git_forever(stop: threading.Event) -> None:
    """Embedded: no Celery beat, and local repos send no webhooks: read Git back from here."""
    from celery import current_app

    from core import dbconn

    task = settings.CELERY_BEAT_SCHEDULE["reconcile-git"]["task"]
    while not stop.wait(settings.GIT_RECONCILE_INTERVAL_SECONDS):
        try:
            current_app.loader.import_default_modules()
            current_app.tasks[task].apply()
        except Exception:
            log.exception("Git reconcile failed")
        finally:
            dbconn.release()


def _watch_flux_in_process(stop: threading.Event) -> None:
    from gitops import flux

    for target in flux.targets():
        threading.Thread(
            target=flux.watch_elected,
            args=(target.name, target.api_client()),
            kwargs={"stop": stop},
            name=f"flux-{target.name}",
            daemon=True,
        ).start()


def _worker_allocator() -> None:
    """jemalloc for the worker processes uvicorn starts (they inherit the environment), when
    installed and LD_PRELOAD is not set already (set it empty to keep glibc's malloc).

    Under 100 concurrent users glibc's malloc fragments: a worker's Python heap stays flat while
    the free chunks it cannot return, and so its resident memory, grow 1-2 MB a minute with no
    plateau in 10 minutes; under jemalloc it stays flat (bench_serving's memory series).
    """
    library = ctypes.util.find_library("jemalloc")
    if library:
        os.environ.setdefault("LD_PRELOAD", library)


class Command(BaseCommand):
    help = (
        "Serve the portal with uvicorn (ASGI). Embedded mode also runs the outbox sweeper "
        "in-process; SIMULATED_CLUSTER=true also runs a simulated cluster (a demo). With "
        "several workers, /metrics adds up every worker's metrics (prometheus_client's "
        "multiprocess mode) and the workers allocate with jemalloc when it is installed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="worker processes (default: PORTAL_WEB_WORKERS)",
        )
        parser.add_argument(
            "--watch-flux",
            action="store_true",
            help="also run the Flux watcher in this process (needed without VALKEY_URL)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        import uvicorn

        workers = opts["workers"] or settings.WEB_WORKERS
        own_metrics_dir = ""
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # prometheus_client's multiprocess mode: every worker writes its values under this
            # directory and /metrics adds them up (the workers read it when they start)
            own_metrics_dir = tempfile.mkdtemp(prefix="metrics-", dir=settings.VAR_DIR)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
        if workers > 1:  # one worker serves from this process, whose allocator is chosen
            _worker_allocator()
        stop = threading.Event()
        if settings.CELERY_TASK_ALWAYS_EAGER:  # no Celery beat: retry deliveries from here
            threading.Thread(
                target=_sweep_forever, args=(stop,), name="outbox-sweeper", daemon=True
            ).start()
            threading.Thread(
                target=_reconcile_git_forever, args=(stop,), name="git-reconcile", daemon=True
            ).start()
        if settings.SIMULATED_CLUSTER:  # a demo: the emulator, a simulated Flux, its watcher
            from gitops.simulated import SimulatedCluster

            SimulatedCluster(stop=stop).start()
        if opts["watch_flux"]:
            _watch_flux_in_process(stop)
        try:
            uvicorn.run(
                "catalyst_portal.asgi:application",
                host=opts["host"],
                port=opts["port"],
                workers=workers,
                log_level=settings.LOG_LEVEL.lower(),
                log_config=None,  # access lines go through the portal's handler (secrets redacted)
                proxy_headers=bool(settings.SECURE_PROXY_SSL_HEADER),
                lifespan="off",
                timeout_graceful_shutdown=settings.WEB_SHUTDOWN_GRACE_SECONDS,
                limit_concurrency=settings.WEB_CONCURRENCY_LIMIT,
            )
        finally:
            stop.set()
            if own_metrics_dir:
                shutil.rmtree(own_metrics_dir, ignore_errors=True)
