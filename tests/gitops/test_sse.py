"""The SSE stream of an Organization's status: fragments, Last-Event-ID replay, access."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.signals import request_finished
from django.db import close_old_connections
from django.test import AsyncClient

from gitops import events, store
from orgs import status as org_status
from tests.gitops.test_org_status import connected_cluster, kustomization

READ_TIMEOUT = 20.0  # a ceiling for one event on a loaded machine, not a pause


class Stream:
    """Reads SSE events off a streaming response."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.chunks = response.streaming_content.__aiter__()
        self.buffer = ""

    async def event(self) -> dict[str, str]:
        while "\n\n" not in self.buffer:
            chunk = await asyncio.wait_for(anext(self.chunks), READ_TIMEOUT)
            self.buffer += chunk.decode()
        block, self.buffer = self.buffer.split("\n\n", 1)
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name == "data":
                fields["data"] = fields.get("data", "") + ("\n" if "data" in fields else "") + value
            else:
                fields[name or "comment"] = value
        return fields

    async def next_named(self) -> dict[str, str]:
        while True:
            fields = await self.event()
            if "event" in fields:
                return fields

    async def close(self) -> None:
        """The browser leaves: the server stops iterating and closes the response."""
        await self.chunks.aclose()
        request_finished.disconnect(close_old_connections)  # as Django's test client does
        try:
            await sync_to_async(self.response.close)()
        finally:
            request_finished.connect(close_old_connections)


async def open_stream(user: Any, slug: str = "acme", **headers: str) -> tuple[Any, Stream | None]:
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.get(f"/events/orgs/{slug}/", headers=headers)
    if response.status_code != 200:
        return response, None
    return response, Stream(response)


def ready_kustomization(org: Any, rv: int) -> dict:
    want = f"main@sha1:{org.last_commit_sha}"
    return kustomization(
        rv,
        ready="True",
        reason="ReconciliationSucceeded",
        message=f"Applied revision: {want}",
        applied=want,
    )


def progressing(rv: int, message: str) -> dict:
    return kustomization(rv, ready="Unknown", reason="Progressing", message=message)


apply = sync_to_async(store.apply)


@pytest.mark.django_db
def test_subscribed_client_gets_the_current_state_then_each_change_as_a_fragment(cast):
    connected_cluster()

    async def scenario() -> None:
        response, stream = await open_stream(cast["viewer"])
        assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
        first = await stream.next_named()
        assert first["event"] == "org-status" and "id" not in first
        assert 'data-flux-state="committed"' in first["data"]
        await apply(
            "hz-fsn-rtz-prod",
            "Kustomization",
            "ADDED",
            progressing(500, "Reconciliation in progress"),
        )
        second = await stream.next_named()
        assert second["id"] and 'data-flux-state="reconciling"' in second["data"]
        assert "Reconciliation in progress" in second["data"]
        await apply(
            "hz-fsn-rtz-prod", "Kustomization", "MODIFIED", ready_kustomization(cast["acme"], 501)
        )
        third = await stream.next_named()
        assert 'data-flux-state="ready"' in third["data"] and ">Ready<" in third["data"]
        assert events.broker().subscriber_count() == 1
        await stream.close()
        assert events.broker().subscriber_count() == 0

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_reconnect_with_last_event_id_receives_the_current_state_once_with_the_last_missed_id(
    cast, settings
):
    connected_cluster()
    settings.SSE_KEEPALIVE_SECONDS = 0.2

    async def scenario() -> None:
        _, stream = await open_stream(cast["owner"])
        await stream.next_named()  # the snapshot
        await apply("hz-fsn-rtz-prod", "Kustomization", "ADDED", progressing(600, "step one"))
        seen = await stream.next_named()
        assert "step one" in seen["data"]
        await stream.close()  # the browser drops off
        await apply("hz-fsn-rtz-prod", "Kustomization", "MODIFIED", progressing(601, "step two"))
        await apply(
            "hz-fsn-rtz-prod", "Kustomization", "MODIFIED", ready_kustomization(cast["acme"], 602)
        )
        last_acme = await sync_to_async(events.publish)(org_status.topic("acme"), {"event": "x"})
        await sync_to_async(events.publish)("org:globex", {"event": "org-status"})
        _, again = await open_stream(cast["owner"], **{"Last-Event-ID": seen["id"]})
        missed = await again.next_named()  # what it missed, as one fragment: the current state
        assert 'data-flux-state="ready"' in missed["data"] and "step two" not in missed["data"]
        assert missed["id"] == last_acme  # resumes after the last acme event it was sent for
        assert await again.event() == {"comment": "keep-alive"}  # nothing else was missed
        await apply("hz-fsn-rtz-prod", "Kustomization", "MODIFIED", progressing(603, "step four"))
        live = await again.next_named()
        assert "step four" in live["data"] and _key(live["id"]) > _key(missed["id"])
        await again.close()
        # up to date: a reconnect with the newest id gets nothing until the next change
        _, current = await open_stream(cast["owner"], **{"Last-Event-ID": live["id"]})
        assert await current.event() == {"retry": "2000", "comment": "connected"}
        assert await current.event() == {"comment": "keep-alive"}
        await current.close()

    async_to_sync(scenario)()


def _key(event_id: str) -> list[int]:
    return [int(p) for p in event_id.split("-")]


@pytest.mark.django_db
def test_publishing_a_change_renders_nothing_and_each_process_renders_once_per_event(cast):
    """Publishers (the watcher, a delivery) say that the object changed; the streams that follow
    it render the fragment, once per process per event, however many browsers follow it."""
    from django.test.signals import template_rendered

    connected_cluster()
    rendered: list[str] = []

    def seen(sender: Any, template: Any, **kwargs: Any) -> None:
        rendered.append(template.name or "")

    template_rendered.connect(seen)
    try:
        store.apply("hz-fsn-rtz-prod", "Kustomization", "ADDED", progressing(800, "nobody looks"))
        assert rendered == []  # nobody follows the org: no fragment rendered

        async def scenario() -> None:
            _, one = await open_stream(cast["owner"])
            _, two = await open_stream(cast["viewer"])
            await one.next_named()  # each stream's first state is its own (the snapshot)
            await two.next_named()
            rendered.clear()
            await apply("hz-fsn-rtz-prod", "Kustomization", "MODIFIED", progressing(801, "both"))
            first, second = await one.next_named(), await two.next_named()
            assert first == second and "both" in first["data"]
            assert rendered == [org_status.FRAGMENT]  # two browsers, one rendering
            await one.close()
            await two.close()

        async_to_sync(scenario)()
    finally:
        template_rendered.disconnect(seen)


@pytest.mark.django_db
def test_a_burst_of_changes_is_sent_as_one_fragment_with_the_last_id(cast, settings):
    connected_cluster()
    settings.SSE_KEEPALIVE_SECONDS = 0.2

    async def scenario() -> None:
        _, stream = await open_stream(cast["owner"])
        await stream.next_named()
        ids = []
        for rv in range(900, 905):  # published before the stream reads any of them
            await sync_to_async(store.apply)(
                "hz-fsn-rtz-prod", "Kustomization", "MODIFIED", progressing(rv, f"burst {rv}")
            )
        ids = [e.id for e in (await events.broker().since("0-0"))[0] if e.topic == "org:acme"]
        sent = await stream.next_named()
        assert "burst 904" in sent["data"] and sent["id"] == ids[-1]
        assert await stream.event() == {"comment": "keep-alive"}
        await stream.close()

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_last_event_id_trimmed_from_the_buffer_gets_the_current_state(cast, settings):
    connected_cluster()
    settings.EVENTS_REPLAY_SIZE = 2
    events.reset()

    async def scenario() -> None:
        first = await sync_to_async(events.publish)("org:acme", {"event": "org-status"})
        for rv in range(700, 710):
            await apply(
                "hz-fsn-rtz-prod", "Kustomization", "MODIFIED", progressing(rv, f"step {rv}")
            )
        if isinstance(events.broker(), events.ValkeyBroker):  # MAXLEN ~ trims whole nodes only
            await sync_to_async(events.broker()._client().xtrim)(
                settings.EVENTS_STREAM_KEY, maxlen=2, approximate=False
            )
        _, stream = await open_stream(cast["owner"], **{"Last-Event-ID": first})
        snapshot = await stream.next_named()
        assert "id" not in snapshot and "step 709" in snapshot["data"]
        await stream.close()

    async_to_sync(scenario)()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["outsider", "member_b"])
def test_a_user_without_access_gets_404_and_no_events(cast, who):
    async def scenario() -> None:
        response, stream = await open_stream(cast[who])
        assert response.status_code == 404 and stream is None
        assert events.broker().subscriber_count() == 0

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_anonymous_gets_401_and_unknown_org_404(cast):
    async def scenario() -> None:
        response = await AsyncClient().get("/events/orgs/acme/")
        assert response.status_code == 401
        missing, _ = await open_stream(cast["sovereign_operator"], slug="nope")
        assert missing.status_code == 404

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_idle_stream_sends_keep_alive_comments(cast, settings):
    settings.SSE_KEEPALIVE_SECONDS = 0.05

    async def scenario() -> None:
        _, stream = await open_stream(cast["viewer"])
        await stream.next_named()
        # Nothing happens: two keep-alive comments in a row, and no event.
        assert (await stream.event()) == {"comment": "keep-alive"}
        assert (await stream.event()) == {"comment": "keep-alive"}
        await stream.close()

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_org_page_connects_to_its_stream(cast, client_for):
    html = client_for(cast["viewer"]).get("/orgs/acme/").content.decode()
    assert 'hx-ext="sse"' in html and 'sse-connect="/events/orgs/acme/"' in html
    assert 'sse-swap="org-status"' in html


def test_topic_names():
    assert org_status.topic("acme") == "org:acme"


@pytest.mark.django_db
def test_under_wsgi_the_stream_stays_quiet_instead_of_looping(cast, client_for, settings):
    settings.SSE_MAX_SECONDS = 0
    response = client_for(cast["viewer"]).get("/events/orgs/acme/")
    assert response.status_code == 200 and response.streaming
    body = b"".join(response.streaming_content)
    assert body.startswith(b"retry: 86400000") and b"event:" not in body
    assert events.broker().subscriber_count() == 0
    assert client_for(cast["outsider"]).get("/events/orgs/acme/").status_code == 404
