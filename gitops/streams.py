"""Server-Sent Events: one generic live-status stream for the htmx SSE extension.

A page opens a stream (`hx-ext="sse" sse-connect="…"`); the app that owns the page provides the
view, which calls `follow(request, find)`. `find(user)` runs once, in a worker thread: it
authorizes through rbac.access (Http404 when the viewer may not read the object: existence is
not disclosed) and returns what to follow (`Followed`): the event topics and how to render the
object's current status fragment.

Events say *that* something changed, not what it looks like: a publisher (the Flux watcher, a
delivery task) only publishes `{"event": …}` on the object's topic, and renders nothing. Each
stream sends the current fragment when an event arrives, rendered once per server process per
event (however many browsers of that process follow the object) and only while someone follows
it. Events that arrive together are sent as one fragment carrying the last one's id. A
reconnecting browser sends Last-Event-ID: when it missed events that are still in the replay
buffer it gets the current fragment once (with the last missed id); when it missed none, nothing
until the next change; on a first connect or when the buffer no longer reaches back, the current
fragment without an id. Comments keep idle connections open through proxies. A stream ends after
SSE_MAX_SECONDS; the browser reconnects at once and is authorized again, so a revoked grant stops
the stream.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from core import dbconn

from . import events

RETRY_MS = 2000
RENDERED_KEPT = 256  # fragments remembered per process, by (object, event id)


@dataclass(frozen=True)
class Followed:
    """What one stream follows: `key` names the object (the same for every viewer: the fragment
    does not depend on who looks), `topics` are the event topics that change it, and `render()`
    returns (event name, current fragment)."""

    key: str
    topics: tuple[str, ...]
    render: Callable[[], tuple[str, str]]


def format_event(data: str, *, event: str = "message", event_id: str = "") -> bytes:
    lines = [f"id: {event_id}"] if event_id else []
    lines.append(f"event: {event}")
    lines += [f"data: {line}" for line in (data.splitlines() or [""])]
    return ("\n".join(lines) + "\n\n").encode()


class _Rendered:
    """Fragments rendered after an event, by (broker, object key, event id), the last RENDERED_KEPT:
    the browsers of one process that follow the same object share one rendering per event."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str, str], tuple[str, str]] = OrderedDict()

    def get(self, followed: Followed, event_id: str) -> tuple[str, str]:
        key = (events.broker().epoch, followed.key, event_id)
        with self._lock:  # one rendering per key even when several streams ask at once
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
            found = _render(followed)
            self._kept[key] = found
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
            return found


rendered = _Rendered(RENDERED_KEPT)


def _render(followed: Followed) -> tuple[str, str]:
    # A stream lives for minutes: each database read releases its connection at once (500
    # streams must not hold 500 of the pool's connections).
    try:
        return followed.render()
    finally:
        dbconn.release()


class EventStream:
    """The body of an SSE response: snapshot (or what was missed), then live changes until
    SSE_MAX_SECONDS. `close()` (called by Django when the response ends) unsubscribes at once."""

    def __init__(self, followed: Followed, *, last_event_id: str | None) -> None:
        self.followed = followed
        self.subscription = events.subscribe(followed.topics, last_event_id=last_event_id)
        self.last_event_id = last_event_id

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._run()

    def close(self) -> None:
        self.subscription.close()

    async def _run(self) -> AsyncIterator[bytes]:
        deadline = time.monotonic() + settings.SSE_MAX_SECONDS
        async with self.subscription as sub:
            yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
            if not self.last_event_id or sub.gap:
                name, html = await sync_to_async(_render)(self.followed)
                yield format_event(html, event=name)
            while (left := deadline - time.monotonic()) > 0:
                event = await sub.next(min(left, settings.SSE_KEEPALIVE_SECONDS))
                if event is None:
                    yield b": keep-alive\n\n"
                    continue
                last = ([event, *sub.drain()])[-1]  # a burst of changes: one fragment
                name, html = await sync_to_async(rendered.get)(self.followed, last.id)
                yield format_event(html, event=name, event_id=last.id)


def sse_response(chunks: EventStream | Iterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"
    return response


def _without_live_updates() -> Iterator[bytes]:
    """Under a WSGI server (e.g. Django's test live server) there is no event loop to stream
    from: keep the connection quietly open (the page keeps what it rendered) instead of letting
    the browser reconnect in a loop. Live status needs the ASGI server (`manage.py serve`)."""
    yield b"retry: 86400000\n: live status needs the ASGI server\n\n"
    pause = threading.Event()
    deadline = time.monotonic() + settings.SSE_MAX_SECONDS
    while not pause.wait(min(settings.SSE_KEEPALIVE_SECONDS, max(0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            return
        yield b": keep-alive\n\n"


def _last_event_id(request: HttpRequest) -> str | None:
    return request.headers.get("Last-Event-ID") or request.GET.get("lastEventId") or None


async def follow(
    request: HttpRequest, find: Callable[[object], Followed]
) -> HttpResponse | StreamingHttpResponse:
    """The SSE response of a live-status view: 401 when signed out, `find(user)`'s Http404 when
    the object is not readable, else the stream."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse("Sign in to follow this page.", status=401, content_type="text/plain")

    def authorized() -> Followed:
        try:
            return find(user)
        finally:
            dbconn.release()

    followed = await sync_to_async(authorized)()
    if "wsgi.version" in request.META:
        return sse_response(_without_live_updates())
    return sse_response(EventStream(followed, last_event_id=_last_event_id(request)))
