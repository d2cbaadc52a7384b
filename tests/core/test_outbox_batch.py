"""Claiming a batch of outbox rows (`outbox.claim_batch`, the group commit's claim): the row plus
due rows of the same task with distinct keys, one lease and one heartbeat; on PostgreSQL two
workers picking at once never wait for each other nor take one row twice."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection, transaction

from core import outbox
from core.models import OutboxItem

pytestmark = pytest.mark.django_db(transaction=True)
TASK = "orgs.tasks.sync_organization_task"


def _rows(count: int, task: str = TASK) -> list[int]:
    return [OutboxItem.objects.create(task_name=task, key=str(n)).pk for n in range(count)]


def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL (PostgreSQL): SKIP LOCKED and concurrent writers")


def test_a_batch_takes_due_rows_of_the_same_task_one_per_key_and_settles_each(settings):
    settings.OUTBOX_HEARTBEAT_SECONDS = 1
    ids = _rows(5)
    duplicate = OutboxItem.objects.create(task_name=TASK, key="1").pk  # key 1 again, newer
    other_task = OutboxItem.objects.create(task_name="rbac.tasks.sync_global_grants_task", key="x")
    with outbox.claim_batch(ids[0], also=3) as batch:
        assert batch is not None
        assert [i.pk for i in batch.items] == ids[:4]  # the row, then the oldest due others
        token = OutboxItem.objects.get(pk=ids[0]).claim_token
        assert set(
            OutboxItem.objects.filter(claim_token=token).values_list("pk", flat=True)
        ) == set(ids[:4])
        assert outbox.renew([i.pk for i in batch.items], token)
        batch.fail(batch.items[2], RuntimeError("this one could not be delivered"))
    rows = {r.pk: r for r in OutboxItem.objects.all()}
    assert [rows[pk].done_at is not None for pk in ids] == [True, True, False, True, False]
    assert rows[ids[2]].last_error == "RuntimeError: this one could not be delivered"
    assert rows[ids[2]].claimed_until is None and rows[ids[4]].attempts == 0
    assert rows[duplicate].done_at is None  # newer than the row that covered its key
    assert rows[other_task.pk].done_at is None and rows[other_task.pk].attempts == 0


def test_an_exception_in_the_block_reschedules_every_row_of_the_batch():
    ids = _rows(3)
    with outbox.claim_batch(ids[0], also=5) as batch:
        assert batch is not None and len(batch.items) == 3
        raise RuntimeError("Git is down")
    rows = OutboxItem.objects.filter(pk__in=ids)
    assert all(r.done_at is None and r.last_error == "RuntimeError: Git is down" for r in rows)


def test_two_workers_racing_never_claim_the_same_row():
    _needs_postgresql()
    ids = _rows(80)
    claimed: dict[str, list[int]] = {"oldest": [], "newest": []}
    errors: list[BaseException] = []
    start = threading.Barrier(2, timeout=20)

    def worker(name: str) -> None:
        try:
            for _round in range(12):
                start.wait()  # both pick at the same moment
                due = OutboxItem.objects.due().order_by("pk" if name == "oldest" else "-pk")
                first = due.values_list("pk", flat=True).first()
                if first is None:
                    continue
                with outbox.claim_batch(first, also=4) as batch:
                    if batch is not None:
                        claimed[name] += [item.pk for item in batch.items]
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
            start.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    counts = Counter(claimed["oldest"] + claimed["newest"])
    assert set(counts) == set(ids) and max(counts.values()) == 1
    assert claimed["oldest"] and claimed["newest"]  # both worked
    assert set(OutboxItem.objects.values_list("attempts", flat=True)) == {1}
    assert not OutboxItem.objects.pending().exists()


def test_picking_skips_rows_another_worker_is_picking_without_waiting():
    """Another worker is inside its pick (its rows locked by FOR UPDATE, not yet claimed): this
    worker's pick passes them over at once instead of waiting for that transaction."""
    _needs_postgresql()
    ids = _rows(6)
    locked, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                list(OutboxItem.objects.select_for_update().filter(pk__in=ids[1:3]))
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=other_worker)
    holder.start()
    assert locked.wait(10)
    result: dict[str, Any] = {}

    def pick() -> None:
        try:
            with outbox.claim_batch(ids[0], also=10) as batch:
                result["claimed"] = [item.pk for item in batch.items] if batch else None
        except BaseException as exc:
            result["error"] = exc
        finally:
            connection.close()

    picker = threading.Thread(target=pick)
    picker.start()
    picker.join(10)
    waited = picker.is_alive()
    release.set()
    holder.join(10)
    picker.join(10)
    assert not waited, "the pick waited for the other worker's locks"
    assert "error" not in result
    assert result["claimed"] == [ids[0], *ids[3:]]


def test_a_worker_stopped_inside_the_block_leaves_its_rows_to_the_lease():
    """SystemExit, KeyboardInterrupt, a generator closed: the work did not finish, so nothing is
    marked done; the rows stay leased and are due again once the lease runs out."""
    ids = _rows(2)
    with pytest.raises(KeyboardInterrupt), outbox.claim_batch(ids[0], also=1) as batch:
        assert batch is not None and len(batch.items) == 2
        raise KeyboardInterrupt
    rows = OutboxItem.objects.filter(pk__in=ids)
    assert all(r.done_at is None and r.claimed_until is not None for r in rows)
    assert all(r.last_error == "" for r in rows)
