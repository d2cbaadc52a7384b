from celery import shared_task

from core import outbox

from . import curation, loader, services


@shared_task(name="marketplace.tasks.sync_application_task", ignore_result=True)
def sync_application_task(item_id: int) -> None:
    with outbox.claim(item_id) as item:
        if item is not None:
            services.deliver_application(app_id=int(item.key), item=item)


@shared_task(name="marketplace.tasks.sync_catalog_task", ignore_result=True)
def sync_catalog_task() -> None:
    loader.sync_all()


@shared_task(name="marketplace.tasks.publish_proposal_task", ignore_result=True)
def publish_proposal_task(item_id: int) -> None:
    with outbox.claim(item_id) as item:
        if item is not None:
            curation.deliver_proposal(proposal_id=int(item.key), item=item)


@shared_task(name="marketplace.tasks.read_back_task", ignore_result=True)
def read_back_task(item_id: int) -> None:
    """A push webhook named this Application's branch: read the change back."""
    from . import gitsync
    from .models import Application

    with outbox.claim(item_id) as item:
        if item is None:
            return
        app = Application.objects.select_related(*gitsync.RELATED).filter(pk=int(item.key)).first()
        if app is not None:
            gitsync.read_back(app)


@shared_task(name="marketplace.tasks.reconcile_git_task", ignore_result=True)
def reconcile_git_task() -> None:
    """Periodic: every Application's branch against what the portal last saw (lost webhooks);
    the pushes older than GIT_PUSH_RETENTION_DAYS go."""
    from gitops import hooks

    from . import gitsync, promotion

    gitsync.reconcile_all()
    promotion.report_open()
    hooks.prune_pushes()


@shared_task(name="marketplace.tasks.sync_policy_task", ignore_result=True)
def sync_policy_task(item_id: int) -> None:
    """Commit an Environment's EnvironmentPolicy CR (level-triggered)."""
    from . import promotion

    with outbox.claim(item_id) as item:
        if item is not None:
            promotion.deliver_policy(policy_id=int(item.key), item=item)


@shared_task(name="marketplace.tasks.open_promotion_task", ignore_result=True)
def open_promotion_task(item_id: int) -> None:
    """Open a promotion's pull request on Gitea (retry-safe by its outbox row)."""
    from . import promotion

    with outbox.claim(item_id) as item:
        if item is not None:
            promotion.open_pull(promotion_id=int(item.key), item=item)
