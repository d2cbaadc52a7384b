"""Reliable delivery: an outbox row per piece of after-commit work.

`enqueue()` writes the row inside the caller's transaction and sends the task on commit. A task
claims its row with a conditional UPDATE (so two workers never run the same row at once), runs, and
marks it done; on failure the row keeps the error and becomes due again after a capped exponential
backoff. `sweep()` re-sends rows that are due: the broker was down, a worker died, or a retry is due.
"""

from __future__ import annotations

import importlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import context, metrics
from .errors import DeliveryError
from .models import AuditEvent, OutboxItem

__all__ = ["Batch", "DeliveryError", "claim", "claim_batch", "enqueue", "renew", "send", "sweep"]
log = logging.getLogger(__name__)


def enqueue(
    task_name: str, key: str | int, *, actor: Any = None, audit_event: AuditEvent | None = None
) -> OutboxItem:
    item = OutboxItem.objects.create(
        task_name=task_name,
        key=str(key),
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        audit_event=audit_event,
        request_id=context.current().request_id,
    )
    transaction.on_commit(lambda: send(item.pk, task_name))
    return item


def send(item_id: int, task_name: str) -> bool:
    """Hand a row to the broker. A broker fault is logged, not raised: the sweeper retries."""
    try:
        # fail fast when the broker is down: the sweeper retries
        _task(task_name).apply_async(
            (item_id,), retry=False, queue=settings.CELERY_TASK_DEFAULT_QUEUE
        )
    except Exception as exc:  # broker down, connection refused, …
        log.warning("could not enqueue %s(%s): %s; the sweeper will retry", task_name, item_id, exc)
        return False
    return True


def _task(name: str) -> Any:
    """The Celery task registered under `name`, importing its module on first use."""
    if name not in current_app.tasks:
        importlib.import_module(name.rsplit(".", 1)[0])
    return current_app.tasks[name]


def renew(item_id: int | list[int], claim_token: str) -> bool:
    """Extend this worker's lease on its row (or rows); False when none is its own any more (done,
    or taken over by another worker after this one stalled past the lease: fencing)."""
    ids = item_id if isinstance(item_id, list) else [item_id]
    lease = timezone.now() + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    return bool(
        OutboxItem.objects.pending()
        .filter(pk__in=ids, claim_token=claim_token)
        .update(claimed_until=lease)
    )


class _Heartbeat:
    """Renews a claim every OUTBOX_HEARTBEAT_SECONDS while the work runs: the lease can be short
    (a dead worker's row is due again within OUTBOX_LEASE_SECONDS) and still cover long work.
    One heartbeat renews every row of a batch in one UPDATE."""

    def __init__(self, item_ids: list[int], claim_token: str) -> None:
        self.item_ids, self.claim_token = item_ids, claim_token
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"outbox-heartbeat-{item_ids[0]}", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stopped.wait(settings.OUTBOX_HEARTBEAT_SECONDS):
                try:
                    if not renew(self.item_ids, self.claim_token):
                        return  # no longer ours: the work's outcome will not be recorded either
                except Exception as exc:  # database blip: the next beat tries again
                    log.warning("outbox heartbeat of %s failed: %s", self.item_ids, exc)
                finally:
                    connection.close()  # this thread's connection back to the pool
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


class Batch:
    """Rows claimed together (`claim_batch`): `items[0]` is the row the task was sent for, the
    others due rows of the same task with distinct keys. `fail(item, exc)` reschedules one row
    alone; the others are marked done when the block ends cleanly."""

    def __init__(self, items: list[OutboxItem]) -> None:
        self.items = items
        self.failed: dict[int, Exception] = {}

    def fail(self, item: OutboxItem, exc: Exception) -> None:
        self.failed[item.pk] = exc


@contextmanager
def claim(item_id: int) -> Iterator[OutboxItem | None]:
    """Claim a due row for this worker; yields None when it is done or claimed elsewhere.

    The claim is a lease of OUTBOX_LEASE_SECONDS renewed by a heartbeat while the block runs.
    On a clean exit the row (and older pending rows for the same task and key, which this run's
    level-triggered work has covered) is marked done; on an exception it is rescheduled — in
    both cases only while the claim is still this worker's.
    """
    with claim_batch(item_id, also=0) as batch:
        yield batch.items[0] if batch is not None else None


@contextmanager
def claim_batch(item_id: int, *, also: int) -> Iterator[Batch | None]:
    """Claim a due row and up to `also` other due rows of the same task with distinct keys (and
    not the row's own), oldest first, for one piece of work (a group commit); yields None when the
    row is done or claimed elsewhere.

    Every row is claimed by the same conditional UPDATE lease as `claim()` (one claim token for
    the batch), renewed by one heartbeat. The other rows are picked with `FOR UPDATE SKIP LOCKED`
    on PostgreSQL, so two workers picking at once never wait for each other nor take one row
    twice. At the end each row is settled on its own: a row given to `Batch.fail` is rescheduled
    with its error; the others are marked done (with older rows of their key) on a clean exit, or
    rescheduled with the block's exception.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    claim_token = uuid.uuid4().hex
    take = {"claimed_until": lease, "claim_token": claim_token, "attempts": F("attempts") + 1}
    if not OutboxItem.objects.due(now).filter(pk=item_id).update(**take):
        yield None
        return
    first = OutboxItem.objects.select_related("actor", "audit_event").get(pk=item_id)
    others = _claim_others(first, also, now, take) if also > 0 else []
    batch = Batch([first, *others])
    token = context.bind(context.RequestMeta(request_id=first.request_id))
    heartbeat = _Heartbeat([item.pk for item in batch.items], claim_token)
    started = time.perf_counter()
    try:
        try:
            yield batch
        except Exception as exc:
            for item in batch.items:
                batch.failed.setdefault(item.pk, exc)
        # Not on SystemExit, KeyboardInterrupt or a closed generator: the work did not finish,
        # and the rows are left to the lease.
        heartbeat.stop()
        _settle(batch, claim_token, time.perf_counter() - started)
    finally:
        heartbeat.stop()
        context.reset(token)


def _claim_others(first: OutboxItem, also: int, now: Any, take: dict[str, Any]) -> list[OutboxItem]:
    """Claim up to `also` due rows of `first`'s task, one per key, other keys than its own."""
    with transaction.atomic():
        candidates = (
            OutboxItem.objects.due(now)
            .filter(task_name=first.task_name)
            .exclude(key=first.key)
            .order_by("available_at", "pk")
        )
        if connection.vendor == "postgresql":
            candidates = candidates.select_for_update(skip_locked=True)
        picked: dict[str, int] = {}
        # a key may have several pending rows: read a few more than needed, keep one per key
        for pk, key in candidates.values_list("pk", "key")[: also * 2]:
            if len(picked) == also:
                break
            picked.setdefault(key, pk)
        if not picked:
            return []
        OutboxItem.objects.due(now).filter(pk__in=picked.values()).update(**take)
    return list(
        OutboxItem.objects.select_related("actor", "audit_event")
        .filter(pk__in=picked.values(), claim_token=take["claim_token"])
        .order_by("available_at", "pk")
    )


def _settle(batch: Batch, claim_token: str, seconds: float) -> None:
    """Mark each row of a finished batch done, or reschedule it with its error."""
    done = timezone.now()
    succeeded = [item for item in batch.items if item.pk not in batch.failed]
    if succeeded:
        covered = Q()
        for item in succeeded:
            covered |= Q(task_name=item.task_name, key=item.key, created_at__lte=item.created_at)
        OutboxItem.objects.pending().filter(covered).update(
            done_at=done, claimed_until=None, last_error=""
        )
    for item in batch.items:
        exc = batch.failed.get(item.pk)
        if exc is None:
            metrics.TASKS.labels(item.task_name, "done").inc()
            metrics.TASK_SECONDS.labels(item.task_name, "done").observe(seconds)
            metrics.TASK_LATENCY.labels(item.task_name).observe(
                max(0.0, (done - item.created_at).total_seconds())
            )
            continue
        metrics.TASKS.labels(item.task_name, "failed").inc()
        metrics.TASK_SECONDS.labels(item.task_name, "failed").observe(seconds)
        _reschedule(item, exc, claim_token)
        if isinstance(exc, DeliveryError):
            reason = " ".join(str(exc).split())  # one line, whatever the error carries
            log.log(
                exc.log_level, "delivery %s failed (attempt %s): %s", item, item.attempts, reason
            )
        else:
            log.error(
                "delivery %s failed (attempt %s): unexpected error",
                item,
                item.attempts,
                exc_info=exc,
            )


def backoff_seconds(attempts: int) -> float:
    base = settings.OUTBOX_RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    capped = min(base, settings.OUTBOX_RETRY_MAX_SECONDS)
    return capped * random.uniform(0.8, 1.2)  # jitter spreads retries after an outage


def _reschedule(item: OutboxItem, exc: Exception, claim_token: str) -> None:
    delay = timedelta(seconds=backoff_seconds(item.attempts))
    OutboxItem.objects.filter(pk=item.pk, claim_token=claim_token).update(
        claimed_until=None,
        available_at=timezone.now() + delay,
        last_error=f"{type(exc).__name__}: {exc}"[:2000],
    )


def sweep(limit: int = 500) -> int:
    """Re-send every due row. Returns how many were sent."""
    rows = list(
        OutboxItem.objects.due().order_by("available_at").values_list("pk", "task_name")[:limit]
    )
    sent = 0
    for pk, task_name in rows:
        sent += send(pk, task_name)
    return sent
