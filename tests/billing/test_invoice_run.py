"""The monthly billing run: drafts of rated usage, issue (gap-free numbers, credit from the
ledger, e-mail with the PDF, events), idempotent and resumable runs, void with a credit note,
tax rounding per line and proration on invoices (worked examples)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing import checkout, invoices, ledger, runs
from billing.models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LedgerEntry,
    Order,
    OrderStatus,
    UsageRecord,
)
from billing.money import line_tax, lines_tax
from core.models import AuditEvent, PlatformEvent
from orgs.models import Organization
from tests.billing.helpers import order_plan

pytestmark = pytest.mark.django_db
PERIOD = "2026-10"


def use(org: Organization, sku: str, quantity: str, *, n: int = 0, day: int = 1) -> None:
    start = datetime(2026, 10, day, n % 24, tzinfo=timezone.get_default_timezone())
    UsageRecord.objects.create(
        organization=org,
        source="metering",
        resource=f"{org.slug}/{sku}/{n}",
        kind="compute",
        sku=sku,
        quantity=Decimal(quantity),
        unit="u",
        window_start=start,
        window_end=start + timezone.timedelta(hours=1),
    )


def flexi(org: Organization) -> Organization:
    Organization.objects.filter(pk=org.pk).update(plan_code="flexi")
    org.refresh_from_db()
    return org


def state() -> tuple[Any, ...]:
    """Everything a run writes, to compare two runs."""
    return (
        list(Invoice.objects.order_by("pk").values_list("pk", "number", "status", "total_minor")),
        InvoiceLine.objects.count(),
        Order.objects.count(),
        LedgerEntry.objects.count(),
        CreditNote.objects.count(),
    )


def test_a_month_is_billed_end_to_end_by_the_command(cast: dict[str, Any], on_commit: Any) -> None:
    acme, globex = flexi(cast["acme"]), cast["globex"]  # globex: a fixed plan (CPU included)
    use(acme, "cpu-core-hours", "6500")
    use(acme, "egress-gib", "150", n=1)
    use(globex, "cpu-core-hours", "100")
    use(globex, "egress-gib", "101.5", n=1)
    use(globex, "egress-gib", "1", n=2, day=31)
    ledger.append(org=acme, amount_minor=10_000, reason="promo", reference="promo:X")
    mail.outbox.clear()
    out = StringIO()
    with on_commit():
        call_command("run_billing", "--period", PERIOD, stdout=out)
    assert "2 invoices drafted, 2 issued" in out.getvalue()

    a = Invoice.objects.get(organization=acme, period=PERIOD)
    lines = {line.code: line for line in a.lines.all()}
    assert lines["cpu-core-hours"].amount_minor == 64_000  # 12 000 + 40 000 + 12 000
    assert lines["egress-gib"].amount_minor == 1_000  # 100 GiB free, 50 at 20
    assert a.subtotal_minor == 65_000 and a.tax_rate_bp == 500
    assert a.tax_minor == 3_200 + 50  # per line, 5 %
    assert a.credit_applied_minor == 10_000 and a.total_minor == 68_250 - 10_000
    assert a.status == InvoiceStatus.ISSUED and a.number == f"INV-{timezone.now().year}-000001"
    assert a.order.kind == "usage" and a.order.due_minor == 58_250
    assert ledger.balance(acme) == 0
    assert LedgerEntry.objects.get(reference=f"order:{a.order.pk}").amount_minor == -10_000

    g = Invoice.objects.get(organization=globex, period=PERIOD)
    assert [line.code for line in g.lines.all()] == ["egress-gib"]  # CPU is in its plan
    assert g.subtotal_minor == 50 and g.number.endswith("-000002")  # 2.5 GiB at 20 baisa
    assert g.tax_minor == 3  # 2.5 rounded half up

    # e-mail to the owners with the PDF; audit
    sent = {m.to[0]: m for m in mail.outbox}
    assert set(sent) == {"owner@example.test", "member_b@example.test"}
    name, pdf, kind = sent["owner@example.test"].attachments[0]
    assert name == f"{a.number}.pdf" and kind == "application/pdf" and pdf.startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="billing.invoice.issued").count() == 2


def test_issuing_and_paying_queue_their_events(cast: dict[str, Any], settings: Any) -> None:
    settings.NATS_URL = "nats://127.0.0.1:4222"  # events are written; publishing runs after commit
    acme = flexi(cast["acme"])
    use(acme, "cpu-core-hours", "10")
    runs.run(PERIOD)
    invoice = Invoice.objects.get(period=PERIOD)
    [issued] = PlatformEvent.objects.filter(subject="catalyst.invoice.issued")
    assert issued.payload == {
        "invoice": invoice.number,
        "organization": "acme",
        "period": PERIOD,
        "currency": "OMR",
        "subtotal_minor": 120,
        "tax_minor": 6,
        "credit_applied_minor": 0,
        "total_minor": 126,
    }
    checkout.record_payment(by=cast["sovereign_operator"], order=invoice.order, reference="T")
    [paid] = PlatformEvent.objects.filter(subject="catalyst.invoice.paid")
    assert paid.payload["invoice"] == invoice.number and paid.payload["total_minor"] == 126


def test_running_again_changes_nothing(cast: dict[str, Any], on_commit: Any) -> None:
    use(flexi(cast["acme"]), "cpu-core-hours", "10")
    with on_commit():
        first = runs.run(PERIOD)
    before = state()
    mail.outbox.clear()
    with on_commit():
        again = runs.run(PERIOD)
    assert (first.drafted, first.issued) == (1, 1)
    assert (again.drafted, again.issued, again.skipped) == (0, 0, 1)
    assert state() == before and mail.outbox == []


def test_a_run_that_stops_half_way_resumes_and_bills_each_once(
    cast: dict[str, Any], monkeypatch: Any, on_commit: Any
) -> None:
    orgs = [flexi(cast["acme"]), flexi(cast["globex"])]
    for org in orgs:
        use(org, "cpu-core-hours", "10")
    real = runs.draft_chunk
    calls: list[Any] = []

    def crash_on_second(chunk: Any, **kwargs: Any) -> Any:
        calls.append(chunk)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(chunk, **kwargs)

    monkeypatch.setattr(runs, "CHUNK", 1)
    monkeypatch.setattr(runs, "draft_chunk", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        runs.run(PERIOD)
    assert Invoice.objects.filter(period=PERIOD).count() == 1  # the first one, a draft
    monkeypatch.setattr(runs, "draft_chunk", real)
    with on_commit():
        result = runs.run(PERIOD)
    assert (result.drafted, result.skipped, result.issued) == (1, 1, 2)
    numbers = sorted(Invoice.objects.filter(period=PERIOD).values_list("number", flat=True))
    year = timezone.now().year
    assert numbers == [f"INV-{year}-000001", f"INV-{year}-000002"]  # gap-free
    assert Invoice.objects.filter(period=PERIOD).values("organization").distinct().count() == 2


def test_only_a_month_that_is_over_is_billed(cast: dict[str, Any]) -> None:
    current = timezone.localtime().strftime("%Y-%m")
    with pytest.raises(CommandError, match="is not over yet"):
        call_command("run_billing", "--period", current)
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("run_billing", "--period", "2026-13")
    assert not Invoice.objects.exists()


def test_drafts_wait_for_an_operator_and_numbers_are_given_at_issue(
    cast: dict[str, Any], on_commit: Any
) -> None:
    use(flexi(cast["acme"]), "cpu-core-hours", "10")
    runs.run(PERIOD, issue=False)
    draft = Invoice.objects.get(period=PERIOD)
    assert draft.status == InvoiceStatus.DRAFT and draft.number is None and draft.order is None
    order = order_plan(by=cast["owner"], org=cast["globex"], plan_code="s")  # numbered meanwhile
    assert order.invoice.number.endswith("-000001")
    with on_commit():
        issued = invoices.issue(by=cast["sovereign_operator"], invoice_id=draft.pk)
    assert issued.number.endswith("-000002") and issued.status == InvoiceStatus.ISSUED
    assert invoices.issue(by=None, invoice_id=draft.pk).number == issued.number  # once


def test_voiding_an_unpaid_invoice_gives_the_credit_back_with_a_credit_note(
    cast: dict[str, Any], on_commit: Any
) -> None:
    acme = flexi(cast["acme"])
    use(acme, "cpu-core-hours", "100")  # 1 200 + 60 tax
    ledger.append(org=acme, amount_minor=500, reason="promo", reference="promo:Y")
    with on_commit():
        runs.run(PERIOD)
    invoice = Invoice.objects.get(period=PERIOD)
    assert (invoice.credit_applied_minor, invoice.total_minor) == (500, 760)
    assert ledger.balance(acme) == 0
    note = invoices.void(by=cast["sovereign_operator"], invoice=invoice, reason="metering fault")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID and invoice.void_reason == "metering fault"
    assert note is not None and note.amount_minor == 1_260 and note.kind == "void"
    assert note.number == f"CN-{timezone.now().year}-000001"
    assert invoice.order.status == OrderStatus.CANCELLED
    assert ledger.balance(acme) == 500  # the credit it used is back
    with pytest.raises(checkout.ConflictError):
        invoices.void(by=None, invoice=invoice, reason="again")


def test_voiding_a_paid_invoice_turns_what_it_charged_into_credit(
    cast: dict[str, Any], on_commit: Any
) -> None:
    acme = flexi(cast["acme"])
    use(acme, "cpu-core-hours", "100")
    with on_commit():
        runs.run(PERIOD)
    invoice = Invoice.objects.get(period=PERIOD)
    checkout.record_payment(by=cast["sovereign_operator"], order=invoice.order, reference="TR-1")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and ledger.balance(acme) == 0
    note = invoices.void(by=cast["sovereign_operator"], invoice=invoice, reason="goodwill")
    assert note is not None and note.amount_minor == 1_260
    assert ledger.balance(acme) == 1_260
    assert LedgerEntry.objects.get(reference=f"void:{invoice.number}").amount_minor == 1_260


def test_tax_is_rounded_half_up_per_line_worked_example() -> None:
    # 5 %: 6001 → 300.05 → 300; 6010 → 300.5 → 301; 10 → 0.5 → 1 (each line on its own)
    assert [line_tax(a, 500) for a in (6001, 6010, 10)] == [300, 301, 1]
    assert lines_tax([10, 10], 500) == 2  # per line; on the subtotal it would be 1
    assert line_tax(-10, 500) == -1  # a credit line mirrors the charge
    assert line_tax(0, 500) == 0


def test_an_upgrade_invoice_shows_the_proration_lines_with_their_tax(
    cast: dict[str, Any], on_commit: Any
) -> None:
    """Worked example: plan S (15.000) to M (29.000) with exactly half the period left:
    unused S −7.500, M for the rest +14.500, tax 5 % per line −0.375 / +0.725."""
    acme = cast["acme"]
    order_plan(by=cast["owner"], org=acme, plan_code="s")
    first = Order.objects.get(organization=acme)
    checkout.record_payment(by=cast["sovereign_operator"], order=first, reference="TR-0")
    first.refresh_from_db()
    sub = first.subscription
    assert sub.recurring_minor == 15_000
    now = timezone.now()
    whole = sub.period_end - sub.period_start
    type(sub).objects.filter(pk=sub.pk).update(
        period_start=now - whole / 2, period_end=now - whole / 2 + whole
    )
    acme.refresh_from_db()
    upgrade = order_plan(by=cast["owner"], org=acme, plan_code="m")
    lines = list(upgrade.invoice.lines.values_list("kind", "amount_minor", "tax_minor"))
    assert lines == [("proration", -7_500, -375), ("proration", 14_500, 725)]
    assert upgrade.invoice.tax_minor == 350 and upgrade.invoice.subtotal_minor == 7_000


NATS_URL = os.environ.get("NATS_URL", "")


async def _last(subject: str) -> tuple[dict[str, Any], str, int]:
    import nats

    from core import events

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        msg = await js.get_last_msg(events.STREAM, subject)
        count = (await js.stream_info(events.STREAM)).state.messages
        return json.loads(msg.data), (msg.headers or {}).get("Nats-Msg-Id", ""), count
    finally:
        await nc.close()


@pytest.mark.skipif(not NATS_URL, reason="needs NATS_URL (JetStream)")
def test_billing_events_reach_jetstream_once_with_the_event_id(
    cast: dict[str, Any], on_commit: Any, settings: Any
) -> None:
    from core import events

    settings.NATS_URL = NATS_URL
    acme = cast["acme"]
    ledger.append(org=acme, amount_minor=100_000, reason="promo", reference="promo:Z")
    with on_commit():
        order_plan(by=cast["owner"], org=acme, plan_code="s")  # paid from credit: it starts
    acme = flexi(acme)
    use(acme, "cpu-core-hours", "10")
    with on_commit():
        runs.run(PERIOD)
    invoice = Invoice.objects.get(period=PERIOD)
    for subject, key, value in [
        ("catalyst.subscription.changed", "change", "start"),
        ("catalyst.invoice.issued", "invoice", invoice.number),
        ("catalyst.invoice.paid", "invoice", invoice.number),  # covered by credit at issue
    ]:
        body, msg_id, _ = asyncio.run(_last(subject))
        event = PlatformEvent.objects.filter(subject=subject).latest("pk")
        assert body["data"][key] == value and msg_id == str(event.uid) == body["id"]
        assert event.published_at is not None
    # a retried publish of the same event is deduplicated by JetStream (Nats-Msg-Id)
    _, _, count = asyncio.run(_last("catalyst.invoice.issued"))
    issued = PlatformEvent.objects.get(subject="catalyst.invoice.issued")
    asyncio.run(events._publish(issued))
    assert asyncio.run(_last("catalyst.invoice.issued"))[2] == count
