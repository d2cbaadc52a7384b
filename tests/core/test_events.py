"""Platform events reach NATS JetStream (the CI services run; skipped without NATS_URL)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest

from core import events
from core.models import OutboxItem, PlatformEvent
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

NATS_URL = os.environ.get("NATS_URL", "")


async def _last(subject: str) -> dict:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        msg = await nc.jetstream().get_last_msg(events.STREAM, subject)
        return json.loads(msg.data)
    finally:
        await nc.close()


async def _count() -> int:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        return (await nc.jetstream().stream_info(events.STREAM)).state.messages
    finally:
        await nc.close()


@pytest.mark.skipif(not NATS_URL, reason="needs NATS_URL (JetStream)")
def test_org_creation_publishes_tenant_created_and_audit_events_once(
    settings, sovereign, client_for, on_commit
):
    settings.NATS_URL = NATS_URL
    slug = f"ev-{uuid.uuid4().hex[:8]}"
    with on_commit():
        response = client_for(make_user("nina")).post(
            "/orgs/new/", {"slug": slug, "display_name": "Events", "default_env_type": "prod"}
        )
    assert response.status_code == 302
    tenant = asyncio.run(_last("catalyst.tenant.created"))
    assert tenant["data"]["organization"] == slug
    audit = asyncio.run(_last("catalyst.audit.organization.create"))
    assert audit["data"]["target"]["repr"] == slug and audit["data"]["actor"] == "nina@example.test"
    assert PlatformEvent.objects.filter(published_at__isnull=True).count() == 0
    assert not OutboxItem.objects.pending().exists()
    # a retried publish of the same event is deduplicated by JetStream (Nats-Msg-Id)
    event = PlatformEvent.objects.get(subject="catalyst.tenant.created")
    before = asyncio.run(_count())
    asyncio.run(events._publish(event))
    assert asyncio.run(_count()) == before


def test_without_nats_no_event_rows_are_written(sovereign, client_for, on_commit):
    with on_commit():
        client_for(make_user("oscar")).post(
            "/orgs/new/", {"slug": "oscar-co", "display_name": "O", "default_env_type": "prod"}
        )
    assert not PlatformEvent.objects.exists()
    assert not OutboxItem.objects.filter(task_name=events.PUBLISH_TASK).exists()
