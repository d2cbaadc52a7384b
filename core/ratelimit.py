"""Fixed-window rate limits on the shared cache (Valkey when VALKEY_URL is set, else local memory).

`hit(scope, key, limit, window)` counts one attempt and answers whether it is still allowed. The
counter key carries the window number, so it expires by itself; nothing here reveals the count.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache


def _key(scope: str, key: str, window: int) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"rl:{scope}:{digest}:{int(time.time()) // window}"


def hit(scope: str, key: str, *, limit: int, window: int) -> bool:
    """Count an attempt; False once more than `limit` attempts fell in the current window."""
    if limit <= 0:
        return True
    name = _key(scope, key, window)
    try:  # one round trip once the window's counter exists
        count = cache.incr(name)
    except ValueError:  # first attempt in this window (or the key just expired)
        if cache.add(name, 1, timeout=window + 1):
            return True
        count = cache.incr(name)
    return count <= limit
