from celery import shared_task

from core import outbox

from . import vouchers


@shared_task(name="billing.tasks.send_voucher_email_task", ignore_result=True)
def send_voucher_email_task(item_id: int) -> None:
    with outbox.claim(item_id) as item:
        if item is not None:
            vouchers.send_voucher_email(voucher_id=int(item.key))
