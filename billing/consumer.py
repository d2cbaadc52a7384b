"""The JetStream consumer of `catalyst.usage.recorded`: platform components publish usage there.

A durable pull consumer (`USAGE_CONSUMER_NAME`) on the portal's stream reads messages in batches;
each message is one record, a list of records, `{"records": [...]}` or a platform-event envelope
(`{"id", "subject", "data": {"records": [...]}}`, which is what the portal itself publishes: those
records are already recorded and are ignored as duplicates). A message is acknowledged once its
records are committed; one that can never be recorded (bad JSON, a refused record) is terminated
(`AckTerm`) and logged, so it does not come back; a database failure is `nak`-ed for redelivery.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from core import events

from . import usage

log = logging.getLogger(__name__)


def subject() -> str:
    return f"{settings.NATS_SUBJECT_PREFIX}.usage.recorded"


def records_of(body: bytes) -> list[Any]:
    """The records a message carries (ValueError when it carries none)."""
    data = json.loads(body)
    if isinstance(data, dict) and "data" in data and "subject" in data:
        data = data["data"]
    if isinstance(data, dict) and "records" in data:
        data = data["records"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError("a usage message carries a record, a list or {records: [...]}")
    return data


def apply(body: bytes) -> usage.Ingested | None:
    """Record one message's usage; None when there was nothing to record (an empty echo)."""
    records = records_of(body)
    if not records:
        return None
    return usage.ingest(records, publish=False)


async def _ensure_stream(js: Any) -> None:
    try:
        await js.stream_info(events.STREAM)
    except Exception:
        await js.add_stream(name=events.STREAM, subjects=[f"{settings.NATS_SUBJECT_PREFIX}.>"])


class _Reader:
    """A pull subscription driven step by step: the event loop runs only while talking to NATS,
    so the records are written by this thread's own database connection, outside any loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.nc: Any = None
        self.sub: Any = None

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def open(self) -> None:
        import nats

        self.nc = self._run(nats.connect(settings.NATS_URL, connect_timeout=3))
        js = self.nc.jetstream()
        self._run(_ensure_stream(js))
        self.sub = self._run(
            js.pull_subscribe(subject(), durable=settings.USAGE_CONSUMER_NAME, stream=events.STREAM)
        )

    def fetch(self, batch: int, wait: float) -> list[Any]:
        from nats.errors import TimeoutError as NatsTimeout

        try:
            return list(self._run(self.sub.fetch(batch, timeout=wait)))
        except (NatsTimeout, TimeoutError):  # nothing waiting
            return []

    def close(self) -> None:
        if self.nc is not None:
            self._run(self.nc.close())
        self.loop.close()


def handle(reader: _Reader, msg: Any) -> None:
    """Record one message, then acknowledge it (or terminate it, or ask for it again)."""
    try:
        result = apply(msg.data)
    except (ValueError, ValidationError) as exc:
        log.warning("usage message %s refused: %s", msg.metadata.sequence.stream, exc)
        reader._run(msg.term())
        return
    except Exception:
        log.exception("usage message not recorded; it will be redelivered")
        reader._run(msg.nak(delay=5))
        return
    if result is not None:
        log.info("usage message: %s", result.as_dict())
    reader._run(msg.ack())


def run(*, once: bool = False, batch: int = 100, wait: float = 2.0) -> int:
    """Read and record until stopped (or, with `once`, until no message is waiting); returns how
    many messages were handled."""
    reader = _Reader()
    handled = 0
    try:
        reader.open()
        while True:
            messages = reader.fetch(batch, wait)
            if not messages and once:
                return handled
            for msg in messages:
                handle(reader, msg)
                handled += 1
    finally:
        reader.close()
