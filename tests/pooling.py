"""A small PostgreSQL connection pool for a test, and how many of its connections are out.

Django gives each thread a connection of its own and returns it to the process's pool only when
the thread closes it. A thread that ends (or blocks for minutes) without closing keeps one of the
pool's connections: `small_pool` makes such a leak show at once (the pool runs dry and the next
`getconn` fails after `timeout` seconds instead of 10), and `checked_out()` counts what is out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection


def checked_out() -> int:
    """Connections of the pool currently lent to a thread (this thread's included)."""
    stats = connection.pool.get_stats()
    return int(stats["pool_size"] - stats["pool_available"])


@contextmanager
def small_pool(max_size: int = 2, timeout: int = 2) -> Iterator[Any]:
    """Replace the process's pool by one of `max_size` connections for the block (PostgreSQL
    only: SQLite has no pool). This thread's connection is returned before and after."""
    if connection.vendor != "postgresql" or not connection.settings_dict["OPTIONS"].get("pool"):
        pytest.skip("needs PostgreSQL with PORTAL_DB_POOL (DATABASE_URL)")
    options = connection.settings_dict["OPTIONS"]
    saved = options["pool"]
    connection.close()
    connection.close_pool()
    options["pool"] = {**saved, "min_size": 0, "max_size": max_size, "timeout": timeout}
    try:
        yield connection.pool
    finally:
        connection.close()
        connection.close_pool()
        options["pool"] = saved


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll `condition` until it holds or `timeout` seconds passed (a ceiling, not a pause)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True
