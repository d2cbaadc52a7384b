from celery import shared_task

from core import outbox

from . import loader, services


@shared_task(name="marketplace.tasks.sync_application_task", ignore_result=True)
def sync_application_task(item_id: int) -> None:
    with outbox.claim(item_id) as item:
        if item is not None:
            services.deliver_application(app_id=int(item.key), item=item)


@shared_task(name="marketplace.tasks.sync_catalog_task", ignore_result=True)
def sync_catalog_task() -> None:
    loader.sync_all()
