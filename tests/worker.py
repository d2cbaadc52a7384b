"""Start a real Celery worker process against the test database and Valkey (used by tests and bench)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    s: dict[str, Any] = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(
    *,
    git_root: Path,
    log_path: Path,
    timeout: float = 60.0,
    pool: str = "threads",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Launch `celery worker` with the same database, broker, queue and Git root; wait until it is
    ready. The queue is settings.CELERY_TASK_DEFAULT_QUEUE: give each run its own, so another
    worker on the same Valkey never takes its messages."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "VALKEY_URL": settings.VALKEY_URL,
        "GIT_ROOT": str(git_root),
        "PORTAL_TASKS_EAGER": "false",
        "PORTAL_VAR_DIR": str(git_root.parent / "worker-var"),
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        **(env or {}),
    }
    log = open(log_path, "wb")  # noqa: SIM115 (kept open for the worker's lifetime)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "catalyst_portal",
            "worker",
            f"--pool={pool}",
            "--concurrency=4",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "-n",
            f"test-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"celery worker exited with {proc.returncode}: {log_path.read_text()[-2000:]}"
            )
        if b"ready." in log_path.read_bytes():
            return proc
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"celery worker not ready after {timeout}s: {log_path.read_text()[-2000:]}")


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def delivering_worker(
    test_settings: Any, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker on a queue of its own, with this process sending tasks to it (not running them
    in-process) while the block runs; skips unless PostgreSQL and Valkey are configured (the
    worker shares the test database). `test_settings`: pytest-django's `settings` fixture."""
    from catalyst_portal.celery import app

    if connection.vendor != "postgresql" or not test_settings.VALKEY_URL:
        pytest.skip(
            "needs DATABASE_URL (PostgreSQL) and VALKEY_URL: the worker shares the test database"
        )
    test_settings.CELERY_TASK_DEFAULT_QUEUE = f"test-{uuid.uuid4().hex}"
    proc = start_worker(git_root=test_settings.GIT_ROOT, log_path=log_path, env=env)
    test_settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    try:
        yield proc
    finally:
        app.conf.task_always_eager = True
        stop_worker(proc)
