"""Dunning: reminders by e-mail through the outbox, then suspension through Git past the grace
period, resumed the same way when the invoice is paid; an unpaid upgrade is only cancelled."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from django.core import mail

from billing import dunning, ledger
from billing.models import DunningNotice, Order
from core.models import AuditEvent, OutboxItem
from orgs.models import Organization
from tests.billing.helpers import order_plan
from tests.gitutil import commits, show

pytestmark = pytest.mark.django_db


def lifecycle() -> str:
    return yaml.safe_load(show("organizations/acme/organization.yaml"))["spec"]["lifecycle"]


def test_unpaid_invoice_reminders_then_suspension_then_resumption(
    cast, settings, on_commit, operator_client
):
    settings.BILLING_REMINDER_DAYS = [3, 7]
    settings.BILLING_GRACE_DAYS = 14
    with on_commit():
        order = order_plan(by=cast["owner"], org=cast["acme"], plan_code="s")
    invoice = order.invoice
    issued = invoice.issued_at
    mail.outbox.clear()
    assert dunning.run(now=issued + timedelta(days=2)) == 0
    with on_commit():
        assert dunning.run(now=issued + timedelta(days=3)) == 1
        assert dunning.run(now=issued + timedelta(days=3, hours=1)) == 0  # once per step
    assert [m.to for m in mail.outbox] == [["owner@example.test"]]
    assert "INV-" in mail.outbox[0].subject and "OMR 15.750" in mail.outbox[0].body
    assert OutboxItem.objects.filter(task_name=dunning.EMAIL_TASK).count() == 1
    with on_commit():
        assert dunning.run(now=issued + timedelta(days=8)) == 1
    assert len(mail.outbox) == 2
    assert Organization.objects.get(slug="acme").state == "provisioning"
    before = len(commits())
    with on_commit():
        assert dunning.run(now=issued + timedelta(days=14)) == 1
    acme = Organization.objects.get(slug="acme")
    assert acme.state == "suspended" and acme.suspended_reason == "unpaid"
    assert lifecycle() == "suspended" and len(commits()) == before + 1
    assert "suspended" in mail.outbox[-1].subject
    steps = list(DunningNotice.objects.order_by("sent_at").values_list("step", flat=True))
    assert steps == ["reminder-3", "reminder-7", "final"]
    # payment resumes it, through Git again
    with on_commit():
        operator_client.post(f"/bss/orders/{order.pk}/pay/", {"reference": "BANK-LATE"})
    acme.refresh_from_db()
    assert acme.state == "provisioning" and acme.suspended_reason == "" and lifecycle() == "active"
    assert acme.plan_code == "s"
    assert AuditEvent.objects.filter(action="organization.resume", actor=None).exists()
    assert dunning.run(now=issued + timedelta(days=30)) == 0


def test_a_manual_suspension_is_not_lifted_by_a_payment(cast, settings, on_commit, operator_client):
    settings.BILLING_GRACE_DAYS = 5
    with on_commit():
        order = order_plan(by=cast["owner"], org=cast["acme"], plan_code="s")
        client = operator_client
        client.post("/orgs/acme/suspend/", {"confirm": "acme"})
    assert Organization.objects.get(slug="acme").suspended_reason == "manual"
    with on_commit():
        dunning.run(now=order.invoice.issued_at + timedelta(days=6))
        client.post(f"/bss/orders/{order.pk}/pay/", {"reference": "BANK-1"})
    assert Organization.objects.get(slug="acme").state == "suspended"


def test_an_unpaid_upgrade_is_cancelled_not_suspended(cast, settings, on_commit):
    settings.BILLING_GRACE_DAYS = 14
    ledger.append(org=cast["acme"], amount_minor=15_750 + 2_000, reason="test")
    order_plan(by=cast["owner"], org=cast["acme"], plan_code="s")
    upgrade = order_plan(by=cast["owner"], org=cast["acme"], plan_code="xl")
    assert upgrade.kind == "upgrade" and upgrade.credit_applied_minor == 2_000
    with on_commit():
        assert dunning.run(now=upgrade.invoice.issued_at + timedelta(days=15)) == 1
    upgrade = Order.objects.get(pk=upgrade.pk)
    acme = Organization.objects.get(slug="acme")
    assert upgrade.status == "cancelled" and upgrade.invoice.status == "void"
    assert acme.state == "provisioning" and acme.plan_code == "s"
    assert ledger.balance(acme) == 2_000  # the held credit came back
    assert "Upgrade cancelled" in mail.outbox[-1].subject
