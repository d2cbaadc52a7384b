"""Two watcher threads handling changes of one object at once, the older reading written last.

`stale_reading_race` runs `stale` in thread "watcher-a", which pauses right after computing its
reading (`module.<reading>`) and before writing it; meanwhile this thread runs `fresh` (a newer
change, which may block on A's row lock); then A goes on. Without a lock around read-and-write,
A's stale reading is written after the fresh one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def stale_reading_race(
    monkeypatch: Any,
    module: Any,
    reading: str,
    *,
    stale: Callable[[], Any],
    fresh: Callable[[], Any],
) -> None:
    computed, go = threading.Event(), threading.Event()
    real = getattr(module, reading)

    def slow_reading(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        if threading.current_thread().name == "watcher-a" and not computed.is_set():
            computed.set()
            go.wait(10)
        return found

    monkeypatch.setattr(module, reading, slow_reading)

    def watcher_a() -> None:
        try:
            stale()
        finally:
            connection.close()  # this thread's pooled connection goes back before it ends

    a = threading.Thread(target=watcher_a, name="watcher-a")
    a.start()
    assert computed.wait(10), "thread A never computed its reading"
    release = threading.Timer(1.0, go.set)  # this thread may block on A's lock meanwhile
    release.start()
    try:
        fresh()
    finally:
        go.set()
        a.join(10)
        release.cancel()
    assert not a.is_alive(), "thread A did not finish"
