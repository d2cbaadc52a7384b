"""Run `manage.py serve` in a subprocess against the test database, and drive it over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

ROOT = Path(__file__).resolve().parents[1]
APP_NAME = "portal-serve-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_url(application_name: str = APP_NAME) -> str:
    """The URL of the test database this process uses (the server must see the same rows).

    `application_name` tells this process's connections apart in pg_stat_activity: every server
    gets its own, so other processes on the test database (a watcher another test started, one
    still closing) are not counted as the server's.
    """
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return (
        f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        f"?application_name={quote(application_name)}"
    )


def held_connections(server: Server) -> int:
    """PostgreSQL connections `server` holds (its own application_name)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [server.application_name],
        )
        return int(cursor.fetchone()[0])


class Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str, application_name: str) -> None:
        self.process = process
        self.url = url
        self.application_name = application_name

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(pid) for pid in children.read_text().split()]
        # uvicorn's workers are spawned processes (multiprocessing also starts a resource tracker)
        return [pid for pid in pids if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """`serve(**env)` starts `manage.py serve` on a free port and waits until it listens."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        port = free_port()
        application_name = f"{APP_NAME}-{port}"
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": test_database_url(application_name),
                "PORTAL_VAR_DIR": str(tmp_path / "var"),
                "GIT_ROOT": str(tmp_path / "git"),
                "LOG_LEVEL": "WARNING",
                "SECRET_KEY": django_settings.SECRET_KEY,
                "PORTAL_WEB_WORKERS": "1",
                **env,
            },
        )
        server = Server(process, f"http://127.0.0.1:{port}", application_name)
        started.append(server)
        deadline = time.monotonic() + 60
        pause = threading.Event()
        while True:
            assert process.poll() is None, "manage.py serve exited"
            assert time.monotonic() < deadline, "manage.py serve did not start in 60 s"
            try:
                httpx.get(f"{server.url}/healthz", timeout=2)
                return server
            except httpx.TransportError:
                pause.wait(0.2)

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def signed_in(url: str, user: Any) -> httpx.Client:
    """A client carrying a session made here (the server shares the database and SECRET_KEY)."""
    django_client = Client()
    django_client.force_login(user)
    client = httpx.Client(base_url=url, timeout=30)
    client.cookies.set("sessionid", django_client.cookies["sessionid"].value)
    return client


def browse(client: httpx.Client, paths: list[str], *, users: int, rounds: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    gate = threading.Barrier(users)

    def user() -> None:
        gate.wait()
        for _ in range(rounds):
            for path in paths:
                try:
                    status = client.get(path).status_code
                except httpx.TransportError:
                    status = 0
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=user) for _ in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses
