from celery import shared_task

from . import outbox


@shared_task(name="core.tasks.sweep_outbox_task", ignore_result=True)
def sweep_outbox_task() -> int:
    return outbox.sweep()
