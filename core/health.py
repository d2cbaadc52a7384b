"""Liveness, readiness and answering 503 when a dependency is down.

`/healthz` (liveness) answers as long as the process serves requests: it touches no dependency,
so an outage of PostgreSQL does not get every pod restarted. `/readyz` (readiness) checks the
database, Valkey and the apps' own checks (`register`: gitops adds Git) within a deadline each
and answers 503 with Retry-After when one fails, so the load balancer sends traffic elsewhere.

A request that fails because the database cannot be reached answers 503 with Retry-After (an
HTML page, or the API's error format under /api/), not 500: `unavailable_response`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

log = logging.getLogger(__name__)

API_MESSAGE = "The service is temporarily unavailable; retry shortly."
_checks: dict[str, Callable[[], None]] = {}


def register(name: str, check: Callable[[], None]) -> None:
    """Add a readiness check: it raises when the dependency cannot be used."""
    _checks[name] = check


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # back to the pool: the probe runs in a thread of its own


def _valkey() -> None:
    from django.core.cache import cache

    client = getattr(cache, "_cache", None)
    if client is not None and hasattr(client, "get_client"):
        client.get_client(write=True).ping()


def _run(check: Callable[[], None], deadline: float) -> dict[str, Any]:
    """Run one check in a thread: a dependency that hangs fails after `deadline` seconds."""
    outcome: dict[str, Any] = {"ok": False, "error": f"no answer in {deadline:g} s"}
    done = threading.Event()

    def target() -> None:
        started = time.perf_counter()
        try:
            check()
            outcome.update(ok=True, error="")
        except Exception as exc:
            outcome["error"] = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        outcome["ms"] = round((time.perf_counter() - started) * 1000, 1)
        done.set()

    threading.Thread(target=target, name="readiness-check", daemon=True).start()
    done.wait(deadline)
    return {
        key: outcome[key] for key in ("ok", "error", "ms") if key in outcome and outcome[key] != ""
    }


def readiness() -> dict[str, dict[str, Any]]:
    checks: dict[str, Callable[[], None]] = {"database": _database}
    if settings.SHARED_VALKEY_URL:
        checks["valkey"] = _valkey
    checks.update(_checks)
    return {name: _run(check, settings.READINESS_TIMEOUT_SECONDS) for name, check in checks.items()}


_NOT_AN_OUTAGE = ("no such table", "no such column", "has no column")  # SQLite: a bug, not down


def is_unavailable(exc: BaseException | None) -> bool:
    """The database cannot be reached (refused, gone, pool exhausted, locked), as opposed to a
    bug (SQLite reports a missing table as an OperationalError too: that stays a 500)."""
    if isinstance(exc, OperationalError) and any(t in str(exc) for t in _NOT_AN_OUTAGE):
        return False
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DatabaseError) and "connection" in str(exc).lower()
    )


def unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    log.warning(
        "503 for %s %s: a dependency is down (%s: %s)",
        request.method,
        request.path,
        type(exc).__name__,
        (str(exc).splitlines() or [""])[0][:200],
    )
    retry = str(settings.RETRY_AFTER_SECONDS)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"errors": {"detail": [API_MESSAGE]}}, status=503)
    else:
        # No request context: the context processors read the database that just failed.
        html = loader.get_template("503.html").render({"retry_after": retry})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = retry
    response["Cache-Control"] = "no-store"
    response._has_been_logged = True  # type: ignore[attr-defined]  # logged above, one line
    return response
