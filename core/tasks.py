from celery import shared_task

from . import events, outbox


@shared_task(name="core.tasks.sweep_outbox_task", ignore_result=True)
def sweep_outbox_task() -> int:
    return outbox.sweep()


@shared_task(name="core.tasks.publish_event_task", ignore_result=True)
def publish_event_task(item_id: int) -> None:
    with outbox.claim(item_id) as item:
        if item is not None:
            events.publish(int(item.key))
