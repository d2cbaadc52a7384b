"""The Celery app: settings from Django (CELERY_*), tasks from every app's tasks.py.

A worker serves Prometheus metrics on PORTAL_METRICS_PORT when it is set (core/metrics.py); with
the prefork pool set PROMETHEUS_MULTIPROC_DIR too, so the pool's child processes are counted.
"""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalyst_portal.settings")

app = Celery("catalyst_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    from core import metrics

    metrics.serve_exporter()
