"""The shared cache (Valkey), surviving an outage of Valkey.

Rate-limit counters and short locks live on the shared cache so every process counts together.
When Valkey cannot be reached, `ResilientRedisCache` answers from a cache local to this process
instead of raising: limits still hold (per process) and no page fails. After a failure it leaves
Valkey alone for `RETRY_SECONDS` (no connect timeout paid by every request), then tries again.
Sessions do not live here: they are in the database (settings.SESSION_ENGINE).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
_GUARDED = (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "has_key",
    "incr",
    "decr",
    "set_many",
    "delete_many",
    "clear",
)


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        options.setdefault("socket_connect_timeout", 1)
        options.setdefault("socket_timeout", 2)
        super().__init__(server, {**params, "OPTIONS": options})
        self._local = LocMemCache(
            f"resilient-fallback-{id(self)}", {"TIMEOUT": self.default_timeout}
        )
        self._down_until = 0.0
        self._lock = threading.Lock()

    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _mark_down(self, exc: BaseException) -> None:
        with self._lock:
            first = not self.is_down()
            self._down_until = time.monotonic() + RETRY_SECONDS
        if first:
            log.warning(
                "Valkey unreachable (%s): using a process-local cache for %ss", exc, RETRY_SECONDS
            )


def _guard(name: str) -> Any:
    shared = getattr(RedisCache, name)
    local = getattr(LocMemCache, name)

    def method(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
        if not self.is_down():
            try:
                return shared(self, *args, **kwargs)
            except _unreachable_errors() as exc:
                self._mark_down(exc)
        return local(self._local, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"{name} on Valkey, or on the process-local cache while Valkey is down."
    return method


for _name in _GUARDED:
    setattr(ResilientRedisCache, _name, _guard(_name))
