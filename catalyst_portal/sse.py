"""Server-Sent Events: live status fragments for the htmx SSE extension.

A stream is opened by a page (`hx-ext="sse" sse-connect="/events/orgs/<slug>/"`), authorized
once with rbac.access (404 when the viewer may not read the object: existence is not disclosed),
and then carries server-rendered HTML fragments as named events (`sse-swap="<event>"`). A
reconnecting browser sends Last-Event-ID and receives the events it missed; when they are no
longer in the replay buffer (or on a first connect) it receives the current state instead.
Comments keep idle connections open through proxies. A stream ends after SSE_MAX_SECONDS; the
browser reconnects at once and is authorized again, so a revoked grant stops the stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from core import dbconn
from gitops import events
from gitops.flux import CLUSTERS_TOPIC
from rbac import access

Snapshot = Callable[[], Awaitable[tuple[str, str]]]


# A stream lives for minutes: each database read releases its connection at once (500 streams
# must not hold 500 of the pool's connections).
release_connection = dbconn.release


RETRY_MS = 2000


def format_event(data: str, *, event: str = "message", event_id: str = "") -> bytes:
    lines = [f"id: {event_id}"] if event_id else []
    lines.append(f"event: {event}")
    lines += [f"data: {line}" for line in (data.splitlines() or [""])]
    return ("\n".join(lines) + "\n\n").encode()


class EventStream:
    """The body of an SSE response: replay-or-snapshot, then live events until SSE_MAX_SECONDS.

    Events on `refresh_topics` (e.g. a cluster connection flip) re-send the snapshot instead of
    their own payload. `close()` (called by Django when the response ends) unsubscribes at once.
    """

    def __init__(
        self,
        topics: list[str],
        *,
        last_event_id: str | None,
        snapshot: Snapshot,
        refresh_topics: frozenset[str] = frozenset(),
    ) -> None:
        self.subscription = events.subscribe(topics, last_event_id=last_event_id)
        self.last_event_id = last_event_id
        self.snapshot = snapshot
        self.refresh_topics = refresh_topics

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._run()

    def close(self) -> None:
        self.subscription.close()

    async def _run(self) -> AsyncIterator[bytes]:
        deadline = time.monotonic() + settings.SSE_MAX_SECONDS
        async with self.subscription as sub:
            yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
            if not self.last_event_id or sub.gap:
                name, html = await self.snapshot()
                yield format_event(html, event=name)
            while (left := deadline - time.monotonic()) > 0:
                event = await sub.next(min(left, settings.SSE_KEEPALIVE_SECONDS))
                if event is None:
                    yield b": keep-alive\n\n"
                    continue
                if event.topic in self.refresh_topics:
                    name, html = await self.snapshot()
                else:
                    name = event.payload.get("event", "message")
                    html = event.payload.get("html", "")
                yield format_event(html, event=name, event_id=event.id)


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


async def org_events(request: HttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    """Live provisioning status of one Organization."""
    from orgs import status as org_status
    from orgs.models import Organization

    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse("Sign in to follow this page.", status=401, content_type="text/plain")

    def load() -> Organization:
        try:
            return access.get_object_for(user, Organization, action="organization.read", slug=slug)
        finally:
            release_connection()

    pk = (await sync_to_async(load)()).pk  # Http404 when not readable
    if "wsgi.version" in request.META:
        return sse_response(_without_live_updates())

    def render() -> tuple[str, str]:
        try:
            fresh = Organization.objects.get(pk=pk)
            return org_status.EVENT, org_status.render_fragment(fresh)
        finally:
            release_connection()

    return sse_response(
        EventStream(
            [org_status.topic(slug), CLUSTERS_TOPIC],
            last_event_id=_last_event_id(request),
            snapshot=sync_to_async(render),
            refresh_topics=frozenset({CLUSTERS_TOPIC}),
        )
    )


async def app_events(
    request: HttpRequest, org: str, env: str, app: str
) -> HttpResponse | StreamingHttpResponse:
    """Live status of one Application (its detail page's status section)."""
    from marketplace import status as app_status
    from marketplace.models import Application

    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse("Sign in to follow this page.", status=401, content_type="text/plain")
    related = ("blueprint_version__blueprint", "environment__organization")

    def load() -> Application:
        try:
            return access.get_object_for(
                user,
                Application.objects.select_related(*related),
                action="applications.read",
                environment__organization__slug=org,
                environment__name=env,
                name=app,
            )
        finally:
            release_connection()

    found = await sync_to_async(load)()  # Http404 when not readable
    if "wsgi.version" in request.META:
        return sse_response(_without_live_updates())

    def render() -> tuple[str, str]:
        try:
            fresh = Application.objects.select_related(*related).filter(pk=found.pk).first()
            if fresh is None:
                return app_status.EVENT, app_status.GONE_HTML
            return app_status.EVENT, app_status.render_fragment(fresh)
        finally:
            release_connection()

    return sse_response(
        EventStream(
            [app_status.topic(found), CLUSTERS_TOPIC],
            last_event_id=_last_event_id(request),
            snapshot=sync_to_async(render),
            refresh_topics=frozenset({CLUSTERS_TOPIC}),
        )
    )
