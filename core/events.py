"""Platform events (`catalyst.tenant.created`, `catalyst.audit.*`, …) published to NATS JetStream.

An event row and its outbox row are written in the caller's transaction; the publish task sends
it with `Nats-Msg-Id` = the event id, so a retried publish is deduplicated by JetStream. Without
NATS_URL nothing is written: audit events stay in the database only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from . import outbox
from .models import PlatformEvent

PUBLISH_TASK = "core.tasks.publish_event_task"
STREAM = "CATALYST"


def enabled() -> bool:
    return bool(settings.NATS_URL)


def emit(name: str, payload: dict[str, Any]) -> PlatformEvent | None:
    """Queue `<prefix>.<name>` for publishing (inside the caller's transaction)."""
    if not enabled():
        return None
    data = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    event = PlatformEvent.objects.create(
        subject=f"{settings.NATS_SUBJECT_PREFIX}.{name}", payload=data
    )
    outbox.enqueue(PUBLISH_TASK, event.pk)
    return event


async def _publish(event: PlatformEvent) -> None:
    import nats

    nc = await nats.connect(settings.NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        prefix = settings.NATS_SUBJECT_PREFIX
        try:
            await js.stream_info(STREAM)
        except Exception:
            await js.add_stream(name=STREAM, subjects=[f"{prefix}.>"])
        body = json.dumps(
            {
                "id": str(event.uid),
                "subject": event.subject,
                "time": event.created_at.isoformat(),
                "data": event.payload,
            }
        ).encode()
        await js.publish(event.subject, body, headers={"Nats-Msg-Id": str(event.uid)})
    finally:
        await nc.close()


def publish(event_id: int) -> None:
    event = PlatformEvent.objects.get(pk=event_id)
    if event.published_at is not None:
        return
    asyncio.run(_publish(event))
    PlatformEvent.objects.filter(pk=event.pk).update(published_at=timezone.now())
