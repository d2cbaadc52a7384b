"""The shared cache (Valkey), surviving an outage of Valkey.

Rate-limit counters and short locks live on the shared cache so every process counts together.
When Valkey cannot be reached, `ResilientRedisCache` answers from a cache local to this process
instead of raising: limits still hold (per process) and no page fails. After a failure it leaves
Valkey alone for `RETRY_SECONDS` (no connect timeout paid by every request), then tries again.
Sessions do not live here: they are in the database (settings.SESSION_ENGINE).

On a Valkey **Cluster** (`VALKEY_CLUSTER_URL`, `OPTIONS={"cluster": True}`) the cache talks to it
through redis-py's cluster client (`RedisClusterCacheClient`): every key goes to the node owning
its hash slot, the client follows MOVED/ASK redirections and re-reads the slot map after a
failover; multi-key reads and writes are split per slot (not atomic across keys, which Django's
cache never promised) and `clear()` empties every primary.

Clients live as long as the process, not the cache object: Django builds a cache object per
thread and per async context, so under ASGI one per request, and each opened its own connection
to Valkey (a cluster client re-read the slot map). On a single Valkey the cache also keeps one
redis-py client per connection pool (`ReusedRedisCacheClient`): Django's client builds a new
`Redis` object for every operation (its table of ~170 reply callbacks included), which cost 0.15
ms of the 0.26 ms CPU a `get_many` took here; a page makes several. A `Redis` object over a pool
is safe to share between threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

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

    return (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        redis.exceptions.ClusterDownError,  # a slot's primary is down and not yet replaced
        redis.exceptions.RedisClusterException,  # no node answers, a slot is not covered
        OSError,
    )


class ReusedRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, one `Redis` object per connection pool instead of one per
    operation."""

    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._clients: dict[int, Any] = {}  # by id of the pool, which lives as long as this
        self._pools_lock = threading.Lock()

    def _get_connection_pool(self, write: bool) -> Any:
        with self._pools_lock:  # shared by threads: two must not each build a pool
            return super()._get_connection_pool(write)  # type: ignore[misc]

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:  # a first-use race builds a spare and keeps one: both work
            django: Any = self  # Django's private members, not in its type stubs
            client = self._clients.setdefault(id(pool), django._client(connection_pool=pool))
        return client


class RedisClusterCacheClient(RedisCacheClient):
    """Django's Redis cache client on a Valkey Cluster: one `RedisCluster` (it keeps a
    connection pool per node) found from the first address; multi-key commands split per slot."""

    def __init__(self, servers: list[str], **options: Any) -> None:
        options.pop("pool_class", None)  # the cluster client keeps a pool per node itself
        options.pop("parser_class", None)
        super().__init__(servers, **options)
        self._seed = servers[0]  # any node: the client reads the slot map from it
        self._cluster_options = {k: v for k, v in options.items() if k != "serializer"}
        self._codec: Any = vars(self)["_serializer"]  # Django's (pickle; integers as they are)
        self._cluster: Any = None
        self._cluster_lock = threading.Lock()

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        if self._cluster is None:
            from redis.cluster import RedisCluster

            with self._cluster_lock:
                if self._cluster is None:
                    self._cluster = RedisCluster.from_url(self._seed, **self._cluster_options)
        return self._cluster

    def get_many(self, keys: Any) -> dict[Any, Any]:
        keys = list(keys)
        values = self.get_client(None).mget_nonatomic(keys)
        return {k: self._codec.loads(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def set_many(self, data: Mapping[Any, Any], timeout: Any) -> None:
        if timeout == 0:  # Django: a non-positive timeout deletes
            self.get_client(None, write=True).delete(*data)
            return
        pipeline = self.get_client(None, write=True).pipeline()
        for key, value in data.items():
            pipeline.set(key, self._codec.dumps(value), ex=timeout)
        pipeline.execute()


class _Health:
    """Whether Valkey at one address is known to be down, for every cache object of the
    process."""

    def __init__(self) -> None:
        self.down_until = 0.0
        self.lock = threading.Lock()


_SHARED: dict[tuple[Any, ...], Any] = {}
_SHARED_LOCK = threading.Lock()


def _shared(key: tuple[Any, ...], build: Any) -> Any:
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = _SHARED[key] = build()
        return found


class ResilientRedisCache(RedisCache):
    """Django's cache handler keeps a cache object per thread **and per async context**: under
    ASGI every request builds its own. What must outlive a request is therefore kept per
    process, keyed by address and options: the client with its connection pools (else every
    request opened a new connection to Valkey, and a cluster client re-read the slot map), the
    "Valkey is down" state (else every request paid the failed connect) and the fallback cache
    (else it held nothing from one request to the next)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        cluster = bool(options.pop("cluster", False))
        options.setdefault("socket_connect_timeout", 1)
        options.setdefault("socket_timeout", 2)
        super().__init__(server, {**params, "OPTIONS": options})
        self._class = RedisClusterCacheClient if cluster else ReusedRedisCacheClient
        # LocMemCache objects of one name share their entries; keys are made as on Valkey
        keys = {k: params[k] for k in ("KEY_PREFIX", "VERSION", "KEY_FUNCTION") if k in params}
        self._local = LocMemCache(
            f"resilient-fallback-{server}", {"TIMEOUT": self.default_timeout, **keys}
        )
        self._health: _Health = _shared(("health", server), _Health)

    @cached_property
    def _cache(self) -> Any:
        django: Any = self
        servers, options = django._servers, django._options
        key = ("client", self._class, tuple(servers), repr(sorted(options.items())))
        return _shared(key, lambda: self._class(servers, **options))

    def is_down(self) -> bool:
        return time.monotonic() < self._health.down_until

    def _mark_down(self, exc: BaseException) -> None:
        with self._health.lock:
            first = not self.is_down()
            self._health.down_until = time.monotonic() + RETRY_SECONDS
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
