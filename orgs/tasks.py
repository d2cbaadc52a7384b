from celery import shared_task
from django.conf import settings

from core import outbox

from . import services


@shared_task(name="orgs.tasks.sync_organization_task", ignore_result=True)
def sync_organization_task(item_id: int) -> None:
    """Deliver the row's Organization together with up to GIT_GROUP_COMMIT_MAX - 1 other due
    Organizations in one commit (group commit); each row is settled on its own."""
    with outbox.claim_batch(item_id, also=settings.GIT_GROUP_COMMIT_MAX - 1) as batch:
        if batch is None:
            return
        for item, outcome in zip(
            batch.items, services.deliver_organizations(batch.items), strict=True
        ):
            if isinstance(outcome, Exception):
                batch.fail(item, outcome)


@shared_task(name="orgs.tasks.send_invitation_task", ignore_result=True)
def send_invitation_task(item_id: int) -> None:
    from . import members

    with outbox.claim(item_id) as item:
        if item is not None:
            members.send_invitation_mail(key=item.key)
