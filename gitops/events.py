"""The event channel between status updates and the browsers' SSE streams.

`publish(topic, payload)` appends an event to a bounded replay buffer and wakes subscribers;
`subscribe(topics, last_event_id=...)` yields what was missed since `last_event_id` (when it is
still in the buffer) and then live events, each exactly once, in order.

Backends: with Valkey (settings.SHARED_VALKEY_URL: VALKEY_CLUSTER_URL, else VALKEY_URL), a Valkey
stream (XADD with MAXLEN is the replay buffer; one XREAD BLOCK reader per server process fans
events out to that process's subscribers, so 500 clients cost one Valkey connection). On a Valkey
Cluster the stream is one key, so it lives in one hash slot on one primary: the cluster clients
route every command there and follow it through a failover. Without Valkey, an in-process buffer
(the watcher must then run in the server process: `manage.py serve --watch-flux`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    id: str
    topic: str
    payload: dict[str, Any]


def _key(event_id: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in event_id.split("-"))
    except ValueError:
        return (-1,)


@dataclass(eq=False)
class _Subscriber:
    topics: frozenset[str]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)

    def offer(self, event: Event) -> None:
        if event.topic in self.topics:
            with contextlib.suppress(RuntimeError):  # the loop is gone: the client left
                self.loop.call_soon_threadsafe(self.queue.put_nowait, event)


class Broker:
    """The part both backends share: the local subscriber registry and replay-then-live."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[_Subscriber] = set()
        # names this broker: event ids are unique within one broker, not across brokers (an
        # in-process buffer starts again at 1; tests switch streams)
        self.epoch = uuid.uuid4().hex

    def publish(self, topic: str, payload: dict[str, Any]) -> str:
        raise NotImplementedError

    async def since(self, last_event_id: str) -> tuple[list[Event], bool]:
        """Events after `last_event_id` and whether that is all of them (False: some were
        trimmed from the buffer, the subscriber must re-read the full state)."""
        raise NotImplementedError

    def _fan_out(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.offer(event)

    async def _started(self, sub: _Subscriber) -> None:
        with self._lock:
            self._subscribers.add(sub)

    def _stopped(self, sub: _Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)


class InProcessBroker(Broker):
    def __init__(self, size: int) -> None:
        super().__init__()
        self._buffer: deque[Event] = deque(maxlen=size)
        self._seq = 0

    def publish(self, topic: str, payload: dict[str, Any]) -> str:
        with self._lock:
            self._seq += 1
            event = Event(str(self._seq), topic, payload)
            self._buffer.append(event)
        self._fan_out(event)
        return event.id

    async def since(self, last_event_id: str) -> tuple[list[Event], bool]:
        last = _key(last_event_id)
        with self._lock:
            events = list(self._buffer)
            first = _key(events[0].id) if events else (self._seq + 1,)
        complete = last >= (first[0] - 1,) and last <= (self._seq,)
        return [e for e in events if _key(e.id) > last], complete


class ValkeyBroker(Broker):
    def __init__(self, url: str, stream: str, size: int, *, cluster: bool = False) -> None:
        super().__init__()
        self.url, self.stream, self.size, self.cluster = url, stream, size, cluster
        self._sync: Any = None
        self._readers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._async: dict[asyncio.AbstractEventLoop, Any] = {}
        self._starting: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _client(self) -> Any:
        if self._sync is None:
            import valkey
            import valkey.cluster

            factory = valkey.cluster.ValkeyCluster if self.cluster else valkey.Valkey
            self._sync = factory.from_url(self.url)
        return self._sync

    def _aclient(self) -> Any:
        loop = asyncio.get_running_loop()
        if loop not in self._async:
            import valkey.asyncio
            import valkey.asyncio.cluster

            factory = (
                valkey.asyncio.cluster.ValkeyCluster if self.cluster else valkey.asyncio.Valkey
            )
            # XREAD BLOCK waits up to 15 s: no socket read timeout on this client.
            self._async[loop] = factory.from_url(
                self.url, socket_timeout=None, socket_connect_timeout=5
            )
        return self._async[loop]

    def publish(self, topic: str, payload: dict[str, Any]) -> str:
        entry = {"topic": topic, "payload": json.dumps(payload)}
        event_id = self._client().xadd(self.stream, entry, maxlen=self.size, approximate=True)
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    @staticmethod
    def _event(entry_id: Any, fields: dict[Any, Any]) -> Event:
        def text(value: Any) -> str:
            return value.decode() if isinstance(value, bytes) else str(value)

        data = {text(k): text(v) for k, v in fields.items()}
        return Event(text(entry_id), data.get("topic", ""), json.loads(data.get("payload", "{}")))

    async def since(self, last_event_id: str) -> tuple[list[Event], bool]:
        client = self._aclient()
        oldest = await client.xrange(self.stream, count=1)
        entries = await client.xrange(self.stream, min=f"({last_event_id}")
        events = [self._event(i, f) for i, f in entries]
        complete = bool(oldest) and _key(self._event(*oldest[0]).id) <= _key(last_event_id)
        newest = await client.xrevrange(self.stream, count=1)
        if not events and (not newest or _key(self._event(*newest[0]).id) <= _key(last_event_id)):
            complete = True  # nothing happened since
        return events, complete

    async def _read_forever(self, client: Any, last: str) -> None:
        while True:
            try:
                reply = await client.xread({self.stream: last}, block=15000, count=500)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the event stream failed; retrying")
                await asyncio.sleep(1)
                continue
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    event = self._event(entry_id, fields)
                    last = event.id
                    self._fan_out(event)

    async def _started(self, sub: _Subscriber) -> None:
        await super()._started(sub)
        loop = asyncio.get_running_loop()
        with self._lock:
            lock = self._starting.setdefault(loop, asyncio.Lock())
        async with lock:  # one reader per event loop, however many subscribe at once
            if loop not in self._readers:
                client = self._aclient()
                newest = await client.xrevrange(self.stream, count=1)
                last = self._event(*newest[0]).id if newest else "0-0"
                self._readers[loop] = loop.create_task(self._read_forever(client, last))

    def _stopped(self, sub: _Subscriber) -> None:
        super()._stopped(sub)
        loop = sub.loop
        with self._lock:
            if any(s.loop is loop for s in self._subscribers):
                return
            task = self._readers.pop(loop, None)
            client = self._async.pop(loop, None)
            self._starting.pop(loop, None)
        if task is None and client is None:
            return

        async def shut() -> None:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if client is not None:
                await client.aclose()

        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to stop
            loop.call_soon_threadsafe(lambda: loop.create_task(shut()))


_broker: Broker | None = None
_broker_lock = threading.Lock()


def broker() -> Broker:
    global _broker
    with _broker_lock:
        if _broker is None:
            url = settings.SHARED_VALKEY_URL
            size = settings.EVENTS_REPLAY_SIZE
            _broker = (
                ValkeyBroker(
                    url, settings.EVENTS_STREAM_KEY, size, cluster=settings.SHARED_VALKEY_CLUSTER
                )
                if url
                else InProcessBroker(size)
            )
        return _broker


def reset() -> None:
    """Forget the broker (tests, or after settings changed)."""
    global _broker
    with _broker_lock:
        _broker = None


def publish(topic: str, payload: dict[str, Any]) -> str:
    """Publish `payload` (JSON-safe) on `topic`; returns the event id."""
    return broker().publish(topic, payload)


class Subscription:
    """`async with subscribe([...], last_event_id=...) as sub: async for event in sub: ...`

    After entering, `sub.gap` is True when `last_event_id` was given but events after it were
    trimmed from the buffer: the caller should send the full current state instead.
    """

    def __init__(self, topics: Iterable[str], last_event_id: str | None = None) -> None:
        self.topics = frozenset(topics)
        self.last_event_id = last_event_id or None
        self.gap = False
        self._replay: list[Event] = []
        self._delivered = _key(last_event_id) if last_event_id else (-1,)
        self._sub: _Subscriber | None = None
        self._broker = broker()

    async def __aenter__(self) -> Subscription:
        self._sub = _Subscriber(self.topics, asyncio.get_running_loop())
        await self._broker._started(self._sub)  # live first, so nothing falls between
        if self.last_event_id:
            events, complete = await self._broker.since(self.last_event_id)
            self.gap = not complete  # then the caller sends the full state, not a replay
            self._replay = [] if self.gap else [e for e in events if e.topic in self.topics]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving (idempotent, callable from sync code such as response.close())."""
        if self._sub is not None:
            self._broker._stopped(self._sub)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        event = await self.next(None)
        assert event is not None
        return event

    def drain(self) -> list[Event]:
        """The events available now, without waiting (the rest of a burst), in order."""
        assert self._sub is not None, "use `async with subscribe(...)`"
        found, self._replay = self._replay, []
        while True:
            try:
                found.append(self._sub.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        fresh = []
        for event in found:
            if _key(event.id) > self._delivered:
                self._delivered = _key(event.id)
                fresh.append(event)
        return fresh

    async def next(self, timeout: float | None) -> Event | None:
        """The next event, or None when `timeout` seconds pass without one (for keep-alives)."""
        assert self._sub is not None, "use `async with subscribe(...)`"
        if self._replay:
            event = self._replay.pop(0)
            self._delivered = max(self._delivered, _key(event.id))
            return event
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                event = await asyncio.wait_for(self._sub.queue.get(), remaining)
            except TimeoutError:
                return None
            if _key(event.id) > self._delivered:
                self._delivered = _key(event.id)
                return event


def subscribe(topics: Iterable[str], *, last_event_id: str | None = None) -> Subscription:
    return Subscription(topics, last_event_id)
