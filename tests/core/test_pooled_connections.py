"""Threads return their pooled database connection (PostgreSQL; skipped on SQLite).

Django gives each thread a connection of its own, returned to the process's pool only when the
thread closes it. Under ASGI, Django renders the page for an exception (404, 403, 500) in a thread
of the event loop's default executor (`sync_to_async(thread_sensitive=False)`), which the
end-of-request cleanup never visits: without an explicit release every error page pinned one
connection (for good once the thread ended), and a pool of 8 ran dry. The in-process background
threads of `manage.py serve` (outbox sweeper, Git reconcile) sleep between rounds and must not keep
a connection while they sleep either.
"""

from __future__ import annotations

import threading

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import AsyncClient

from gitops.management.commands import serve
from tests.pooling import checked_out, small_pool, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROUNDS = 6  # three times the pool: a connection kept per error page runs it dry


def test_error_pages_served_under_asgi_return_their_connection(cast):
    signed_in = AsyncClient()
    signed_in.force_login(cast["outsider"])
    anonymous = AsyncClient()
    with small_pool(max_size=2):
        for _ in range(ROUNDS):
            page = async_to_sync(anonymous.get)("/no-such-page/")
            assert page.status_code == 404
            assert b"Not found" in page.content and b"demo.local" in page.content  # the shell
            other_org = async_to_sync(signed_in.get)("/orgs/globex/")  # a sync view's 404
            assert other_org.status_code == 404 and b"Not found" in other_org.content
            stream = async_to_sync(signed_in.get)("/events/orgs/globex/")  # an async view's 404
            assert stream.status_code == 404
        connection.close()
        assert checked_out() == 0
        # and the pool still serves a page that reads the database
        assert async_to_sync(signed_in.get)("/orgs/").status_code == 200


def test_serve_background_threads_hold_no_connection_between_rounds(settings):
    """The sweeper and the Git reconcile of embedded `serve` borrow a connection per round."""
    settings.OUTBOX_SWEEP_INTERVAL_SECONDS = 0.05
    settings.GIT_RECONCILE_INTERVAL_SECONDS = 0.05
    stop = threading.Event()
    with small_pool(max_size=2) as pool:
        threads = [
            threading.Thread(target=serve._sweep_forever, args=(stop,), daemon=True),
            threading.Thread(target=serve._reconcile_git_forever, args=(stop,), daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            # several rounds each (a connection borrowed per round), and between rounds (the
            # threads sleep) none of the pool's connections is out
            returned = wait_for(
                lambda: (
                    pool.get_stats().get("requests_num", 0) >= 3 * len(threads)
                    and checked_out() == 0
                )
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
        assert returned, f"the sleeping threads keep their connections: {pool.get_stats()}"
        assert checked_out() == 0
