"""`manage.py serve` as production runs it: worker processes, bounded database connections.

These start the real server in a subprocess against the test database (PostgreSQL only: the
connection leak is a PostgreSQL "too many clients" failure) and drive it over HTTP.
"""

from __future__ import annotations

import ctypes.util
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.serving import browse, held_connections, serve, signed_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("serve"),
    pytest.mark.skipif(
        "postgresql" not in django_settings.DATABASES["default"]["ENGINE"],
        reason="the connection leak is a PostgreSQL failure (DATABASE_URL=postgres://…)",
    ),
]
__all__ = ["serve"]


def test_twenty_concurrent_users_get_no_errors_and_connections_stay_bounded(serve, cast):
    server = serve(PORTAL_WEB_WORKERS="2", PORTAL_DB_POOL_MAX="4")
    client = signed_in(server.url, cast["owner"])
    statuses = browse(client, ["/orgs/", "/orgs/acme/", "/healthz"], users=20, rounds=5)
    assert statuses == Counter({200: 300})
    # Two worker processes, each holding at most its pool: not one connection per request thread.
    assert held_connections(server) <= 2 * 4


def test_serve_runs_the_configured_number_of_worker_processes(serve):
    server = serve(PORTAL_WEB_WORKERS="2")
    assert len(server.worker_pids()) == 2


@pytest.mark.skipif(
    not ctypes.util.find_library("jemalloc"), reason="jemalloc is not installed (libjemalloc2)"
)
def test_worker_processes_allocate_with_jemalloc(serve):
    # glibc's malloc fragments under many concurrent users (resident memory grows ~1-2 MB a
    # minute a worker while the Python heap stays flat); the workers preload jemalloc instead
    server = serve(PORTAL_WEB_WORKERS="2")
    for pid in server.worker_pids():
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "libjemalloc" in maps, f"worker {pid} allocates with glibc's malloc"
