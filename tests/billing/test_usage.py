"""Usage: the ingestion API (token, batches, duplicates, field paths), append-only records,
rating with graduated and volume tiers, and the JetStream consumer against the real NATS."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts import services as account_services
from billing import consumer, usage
from billing.models import AppendOnlyError, TierMode, UsagePrice, UsageRecord
from core.models import PlatformEvent
from rbac import services as rbac_services
from tests.conftest import grant, make_user

pytestmark = pytest.mark.django_db
NATS_URL = os.environ.get("NATS_URL", "")


def record(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "organization": "acme",
        "source": "metering",
        "resource": f"pod/web-{n}",
        "kind": "compute",
        "sku": "cpu-core-hours",
        "quantity": "1.5",
        "unit": "core-hour",
        "window_start": f"2026-10-01T{n % 24:02d}:00:00Z",
        "window_end": f"2026-10-01T{n % 24:02d}:59:59Z",
        "region": "hz-fsn-rtz-prod",
        "labels": {"env": "prod"},
        **extra,
    }


@pytest.fixture
def meter(cast: dict[str, Any]) -> Client:
    """A metering service account: a global operator-tier grant (includes usage.record), a token."""
    account = make_user("metering-bot")
    grant(account, "operator", rbac_services.GLOBAL_SCOPE)
    _, raw = account_services.create_api_token(user=account, name="metering", days=30)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def post(client: Client, records: Any) -> Any:
    return client.post("/api/v1/usage", {"records": records}, content_type="application/json")


def test_a_batch_is_recorded_and_a_resent_batch_is_accepted_and_ignored(meter: Client) -> None:
    batch = [record(n) for n in range(20)]
    first = post(meter, batch)
    assert first.status_code == 200, first.content
    assert first.json() == {"received": 20, "recorded": 20, "duplicates": 0}
    again = post(meter, [*batch[:5], record(20), record(20)])  # resent, and twice in one batch
    assert again.json() == {"received": 7, "recorded": 1, "duplicates": 6}
    assert UsageRecord.objects.count() == 21
    row = UsageRecord.objects.get(resource="pod/web-3")
    assert row.organization.slug == "acme" and row.quantity == Decimal("1.5")
    assert row.labels == {"env": "prod"} and row.region == "hz-fsn-rtz-prod"


def test_a_bad_record_refuses_the_whole_batch_with_field_paths(meter: Client) -> None:
    batch = [
        record(0),
        record(1, quantity="-1"),
        record(2, window_end="2026-10-01T01:00:00Z"),  # before its start
        record(3, organization="nope", sku="gpu-hours"),
        record(4, window_start="yesterday", quantity="0.0000001"),
    ]
    response = post(meter, batch)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {
        "records[1].quantity",
        "records[2].window_end",
        "records[3].organization",
        "records[3].sku",
        "records[4].window_start",
        "records[4].quantity",
    }
    assert not UsageRecord.objects.exists()  # nothing half-written


def test_batches_are_bounded(meter: Client) -> None:
    response = post(meter, [record(n) for n in range(1001)])
    assert response.status_code == 400
    assert response.json()["errors"]["records"] == ["At most 1000 records per batch (1001 sent)."]
    assert post(meter, []).status_code == 400
    assert not UsageRecord.objects.exists()


def test_only_a_global_usage_grant_records_usage(cast: dict[str, Any], client_for: Any) -> None:
    assert Client().post(
        "/api/v1/usage", {"records": [record()]}, "application/json"
    ).status_code in (
        401,
        403,
    )
    _, raw = account_services.create_api_token(user=cast["owner"], name="mine", days=30)
    owner = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")  # owner of acme: no global grant
    assert post(owner, [record()]).status_code == 404
    assert post(client_for(cast["admin"]), [record()]).status_code == 404
    assert not UsageRecord.objects.exists()


def test_usage_records_are_append_only(meter: Client) -> None:
    post(meter, [record()])
    row = UsageRecord.objects.get()
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        UsageRecord.objects.update(quantity=0)
    if connection.vendor == "postgresql":  # the database refuses it too
        from django.db import IntegrityError, transaction

        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
            cur.execute("UPDATE billing_usagerecord SET quantity = 0")


def test_graduated_and_volume_tiers_worked_examples() -> None:
    cpu = UsagePrice.objects.filter(sku="cpu-core-hours").latest("effective_from")
    # 1000 h at 12 baisa + 4000 h at 10 + 1500 h at 8 = 12 000 + 40 000 + 12 000
    assert usage.rated_minor(cpu, Decimal("6500")) == 64_000
    memory = UsagePrice.objects.filter(sku="memory-gib-hours").latest("effective_from")
    # 4000 at 1.5 + 0.5 at 1.2 = 6000.6 → 6001 (half up); 1.333333 at 1.5 = 1.9999995 → 2
    assert usage.rated_minor(memory, Decimal("4000.5")) == 6001
    assert usage.rated_minor(memory, Decimal("1.333333")) == 2
    volume = UsagePrice(
        sku="x",
        name="X",
        unit="GiB",
        mode=TierMode.VOLUME,
        tiers=[{"up_to": "100", "unit_minor": "20"}, {"up_to": None, "unit_minor": "15"}],
    )
    assert usage.rated_minor(volume, Decimal("100")) == 2000  # all at the first tier
    assert usage.rated_minor(volume, Decimal("101")) == 1515  # all at the second
    assert "0–1000 at OMR 0.012, 1000–5000 at OMR 0.01, over 5000 at OMR 0.008" in (
        usage.describe(cpu)
    )


def test_rating_uses_the_price_in_force_at_the_start_of_the_month(meter: Client) -> None:
    start, _ = usage.month_bounds("2026-10")
    UsagePrice.objects.create(
        sku="egress-gib",
        name="Internet egress",
        unit="GiB",
        tiers=[{"up_to": None, "unit_minor": "50"}],
        effective_from=start.replace(day=15),  # mid-month: next month's price
    )
    book = usage.UsageBook(start, "OMR")
    lines = usage.rate(book, {"egress-gib": Decimal("150")}, flexi=False)
    assert [line.amount_minor for line in lines] == [50 * 20]  # 100 free, 50 at 20
    # fixed plans include CPU: not listed; Flexi pays it
    assert usage.rate(book, {"cpu-core-hours": Decimal(10)}, flexi=False) == []
    assert usage.rate(book, {"cpu-core-hours": Decimal(10)}, flexi=True)[0].amount_minor == 120


def test_a_recorded_batch_is_announced_once(settings: Any, meter: Client) -> None:
    settings.NATS_URL = "nats://example.invalid:4222"  # events are queued in the outbox
    post(meter, [record(0), record(1)])
    post(meter, [record(0)])  # nothing new: no event
    [event] = PlatformEvent.objects.filter(subject="catalyst.usage.recorded")
    assert event.payload["count"] == 2
    assert {r["resource"] for r in event.payload["records"]} == {"pod/web-0", "pod/web-1"}


async def _publish(subject: str, bodies: list[bytes]) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        await consumer._ensure_stream(js)
        for body in bodies:
            await js.publish(subject, body)
    finally:
        await nc.close()


@pytest.mark.skipif(not NATS_URL, reason="needs NATS_URL (JetStream)")
def test_the_jetstream_consumer_records_usage_once(settings: Any, cast: dict[str, Any]) -> None:
    settings.NATS_URL = NATS_URL
    settings.USAGE_CONSUMER_NAME = f"test-usage-{uuid.uuid4().hex[:8]}"
    # a fresh durable consumer starts at the stream's beginning: drain what earlier runs left
    consumer.run(once=True)
    before = UsageRecord.objects.count()
    tag = uuid.uuid4().hex[:8]
    one = record(1, resource=f"pod/{tag}-1")
    many = {"records": [record(n, resource=f"pod/{tag}-{n}") for n in range(2, 6)]}
    envelope = {
        "id": "x",
        "subject": consumer.subject(),
        "time": timezone.now().isoformat(),
        "data": {"records": [one]},
    }  # the portal's own announcement echoed back
    bodies = [
        json.dumps(one).encode(),
        json.dumps(many).encode(),
        json.dumps(envelope).encode(),
        b"not json",
        json.dumps(record(9, quantity="-3")).encode(),
    ]
    asyncio.run(_publish(consumer.subject(), bodies))
    handled = consumer.run(once=True)
    assert handled == 5
    assert UsageRecord.objects.count() == before + 5  # one + four; the echo and bad ones are not
    assert UsageRecord.objects.filter(resource__startswith=f"pod/{tag}-").count() == 5
    # redelivery after a restart: everything was acknowledged or terminated, nothing comes back
    assert consumer.run(once=True) == 0
    asyncio.run(_drop_consumer(settings.USAGE_CONSUMER_NAME))


async def _drop_consumer(name: str) -> None:
    import nats

    from core import events

    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_consumer(events.STREAM, name)
    finally:
        await nc.close()
