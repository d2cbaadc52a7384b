"""This thread's database connection back to the pool, in threads Django does not clean up.

Django gives each thread a connection of its own and returns it to the process's pool (psycopg's
pool under PostgreSQL) only when that thread closes it; it does so at the end of a request, in the
request's thread. Every other thread that touches the ORM must release its connection itself:
one that ends without closing loses a pooled connection for good, and one that blocks (a watch
stream, a sleep between rounds, an SSE stream) keeps it from every request meanwhile. Such threads
call `release()` before they block and when they end, or run their work under `@releasing`.

Inside a transaction nothing is released (the connection carries the transaction): in tests run
inside one, and in code that calls this from an atomic block by mistake.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import connection

P = ParamSpec("P")
R = TypeVar("R")


def release() -> None:
    """Return this thread's connection to the pool (the next query borrows one again)."""
    if not connection.in_atomic_block:
        connection.close()


def releasing(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func`, then release this thread's connection, whatever the outcome."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            release()

    return wrapper
