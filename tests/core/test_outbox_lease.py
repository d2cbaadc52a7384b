"""The outbox lease: short, renewed by a heartbeat while the work runs, so a worker that dies
(killed, its machine gone) gives its row back within seconds, not after a minute."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from core import outbox
from core.models import OutboxItem

pytestmark = pytest.mark.django_db(transaction=True)


def _item() -> OutboxItem:
    return OutboxItem.objects.create(task_name="orgs.tasks.sync_organization_task", key="1")


def _is_due(pk: int) -> bool:
    return OutboxItem.objects.due().filter(pk=pk).exists()


def test_a_dead_workers_row_is_due_again_within_the_default_lease():
    """A killed worker never finishes its `claim` block: its row waits out the lease. The
    default lease is short (a heartbeat keeps live work claimed), and the sweep comes often."""
    item = _item()
    claim = outbox.claim(item.pk)
    assert claim.__enter__() is not None  # claimed, then the worker is killed: never exits
    row = OutboxItem.objects.get(pk=item.pk)
    assert row.claimed_until is not None
    held = (row.claimed_until - timezone.now()).total_seconds()
    assert held <= 20, f"a dead worker's row waits {held:.0f} s"
    assert django_settings.OUTBOX_SWEEP_INTERVAL_SECONDS <= 10
    # Once the lease has passed the row is due: the next sweep re-sends it.
    OutboxItem.objects.filter(pk=item.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert _is_due(item.pk)
    connection.close()


def test_the_heartbeat_keeps_long_work_claimed_past_the_lease(settings):
    settings.OUTBOX_LEASE_SECONDS = 1
    settings.OUTBOX_HEARTBEAT_SECONDS = 0.2
    item = _item()
    stolen: list[bool] = []
    with outbox.claim(item.pk) as claimed:
        assert claimed is not None
        deadline = time.monotonic() + 3  # three leases long
        pause = threading.Event()
        while time.monotonic() < deadline:
            stolen.append(_is_due(item.pk))
            with outbox.claim(item.pk) as rival:  # another worker tries to take it
                assert rival is None
            pause.wait(0.1)
    assert not any(stolen)
    done = OutboxItem.objects.get(pk=item.pk)
    assert done.done_at is not None and done.attempts == 1


def test_a_stalled_worker_does_not_renew_a_claim_another_worker_took(settings):
    """Fencing: the heartbeat renews only its own claim: a worker that stalled past its lease
    and lost the row cannot extend the new owner's lease."""
    settings.OUTBOX_LEASE_SECONDS = 1
    settings.OUTBOX_HEARTBEAT_SECONDS = 30  # no heartbeat during the test
    item = _item()
    first = outbox.claim(item.pk)
    assert first.__enter__() is not None
    stale = OutboxItem.objects.get(pk=item.pk).claim_token
    OutboxItem.objects.filter(pk=item.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    with outbox.claim(item.pk) as second:
        assert second is not None
        token = OutboxItem.objects.get(pk=item.pk).claim_token
        assert token and token != stale
        assert outbox.renew(item.pk, stale) is False
        assert outbox.renew(item.pk, token) is True
    assert OutboxItem.objects.get(pk=item.pk).attempts == 2
