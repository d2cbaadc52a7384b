from celery import shared_task

from core import outbox

from . import services


@shared_task(name="orgs.tasks.sync_organization_task", ignore_result=True)
def sync_organization_task(item_id: int) -> None:
    with outbox.claim(item_id) as item:
        if item is not None:
            services.deliver_organization(org_id=int(item.key), item=item)
