from celery import shared_task

from core import outbox

from . import services


@shared_task(name="rbac.tasks.sync_global_grants_task", ignore_result=True)
def sync_global_grants_task(item_id: int) -> None:
    with outbox.claim(item_id) as item:
        if item is not None:
            services.deliver_global_grants(item=item)


@shared_task(name="rbac.tasks.expire_grants_task", ignore_result=True)
def expire_grants_task() -> int:
    return services.expire_grants()
