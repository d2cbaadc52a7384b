"""The Celery app: settings from Django (CELERY_*), tasks from every app's tasks.py.

A worker serves Prometheus metrics on PORTAL_METRICS_PORT when it is set (core/metrics.py). The
prefork pool's children run the tasks: before the pool forks, the worker switches to
prometheus_client's multiprocess mode (a directory of its own unless PROMETHEUS_MULTIPROC_DIR is
set), so the exporter adds up every child's counts.
"""

import os
import tempfile
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalyst_portal.settings")

app = Celery("catalyst_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    from django.conf import settings

    from core import metrics

    if not settings.METRICS_PORT:
        return
    if not metrics.multiprocess_dir():
        metrics.use_multiprocess_dir(tempfile.mkdtemp(prefix="portal-worker-metrics-"))
    metrics.serve_exporter()
