"""Fixed-window rate limits on the shared cache (Valkey when VALKEY_URL is set, else local memory).

`hit(scope, key, limit, window)` counts one attempt and answers whether it is still allowed;
`count` counts one and answers the count; `peek` reads the count without counting. The counter key
carries the window number, so it expires by itself.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache


def _key(scope: str, key: str, window: int) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"rl:{scope}:{digest}:{int(time.time()) // window}"


def count(scope: str, key: str, *, window: int) -> int:
    """Count an attempt; the number of attempts in the current window, this one included."""
    name = _key(scope, key, window)
    try:  # one round trip once the window's counter exists
        return int(cache.incr(name))
    except ValueError:  # first attempt in this window (or the key just expired)
        if cache.add(name, 1, timeout=window + 1):
            return 1
        return int(cache.incr(name))


def peek(scope: str, key: str, *, window: int) -> int:
    """The attempts counted in the current window, without counting one."""
    return int(cache.get(_key(scope, key, window)) or 0)


def seconds_left(window: int) -> int:
    """Seconds until the current window ends (when its counters start again from zero)."""
    return window - int(time.time()) % window


def hit(scope: str, key: str, *, limit: int, window: int) -> bool:
    """Count an attempt; False once more than `limit` attempts fell in the current window."""
    if limit <= 0:
        return True
    return count(scope, key, window=window) <= limit
