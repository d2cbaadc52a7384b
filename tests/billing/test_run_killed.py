"""A billing run killed half-way (SIGKILL of a real `manage.py run_billing` process) and run again
bills each Organization exactly once, with gap-free numbers. PostgreSQL only (the process shares
the test database); skipped on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from billing import runs
from billing.models import Invoice, InvoiceStatus, LedgerEntry, Order, UsageRecord
from orgs.models import Organization, OrgState
from tests.billing.conftest import seed_price_book
from tests.worker import ROOT, database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ORGS = 1_200
PERIOD = "2026-10"


def _month(count: int) -> None:
    Organization.objects.bulk_create(
        Organization(
            slug=f"k-{i:04d}", display_name=f"K {i}", plan_code="flexi", state=OrgState.READY
        )
        for i in range(count)
    )
    orgs = list(Organization.objects.filter(slug__startswith="k-").order_by("pk"))
    start = datetime(2026, 10, 3, tzinfo=timezone.get_default_timezone())
    UsageRecord.objects.bulk_create(
        UsageRecord(
            organization=org,
            source="kill",
            resource=f"{org.slug}/cpu",
            kind="compute",
            sku="cpu-core-hours",
            quantity=Decimal(10 + i % 50),
            unit="core-hour",
            window_start=start,
            window_end=start + timedelta(hours=1),
        )
        for i, org in enumerate(orgs)
    )
    LedgerEntry.objects.bulk_create(
        LedgerEntry(organization=org, amount_minor=100, currency="OMR", reason="promo")
        for org in orgs[::2]
    )


def _wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the run did not get there in time"
        time.sleep(0.05)


def test_a_killed_run_restarted_bills_each_organization_once(
    sovereign: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    seed_price_book()
    _month(ORGS)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "VALKEY_URL": "",
        "NATS_URL": "",
        "PORTAL_TASKS_EAGER": "true",  # each issued chunk's e-mails (PDFs) run in the process
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_billing", "--period", PERIOD],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    issued = Invoice.objects.filter(period=PERIOD).exclude(status=InvoiceStatus.DRAFT)
    try:
        _wait_for(lambda: issued.count() >= runs.CHUNK or proc.poll() is not None, 180)
    finally:
        proc.kill()
        proc.wait()
    done = issued.count()
    assert 0 < done < ORGS, f"killed too late to test anything ({done} issued)"
    assert Invoice.objects.filter(period=PERIOD).count() == ORGS  # all drafted, some issued

    from core import outbox

    monkeypatch.setattr(outbox, "send", lambda item_id, task_name: True)  # e-mails: not here
    result = runs.run(PERIOD)
    assert (result.drafted, result.issued) == (0, ORGS - done)
    invoices = Invoice.objects.filter(period=PERIOD)
    assert invoices.count() == ORGS
    assert invoices.values("organization").distinct().count() == ORGS
    assert not invoices.filter(status=InvoiceStatus.DRAFT).exists()
    year = timezone.now().year
    numbers = sorted(invoices.values_list("number", flat=True))
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, ORGS + 1)]  # no gap, no twice
    assert Order.objects.filter(kind="usage").count() == ORGS
    # the credit was applied once per Organization
    assert LedgerEntry.objects.filter(reference__startswith="order:").count() == ORGS // 2
    again = runs.run(PERIOD)
    assert (again.drafted, again.issued, again.skipped) == (0, 0, ORGS)
