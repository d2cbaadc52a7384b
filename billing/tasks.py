from celery import shared_task

from core import outbox

from . import vouchers


@shared_task(name="billing.tasks.send_voucher_email_task", ignore_result=True)
def send_voucher_email_task(item_id: int) -> None:
    with outbox.claim(item_id) as item:
        if item is not None:
            vouchers.send_voucher_email(voucher_id=int(item.key))


@shared_task(name="billing.tasks.refund_unapplied_payment_task", ignore_result=True)
def refund_unapplied_payment_task(item_id: int) -> None:
    from .payments import events

    with outbox.claim(item_id) as item:
        if item is not None:
            events.refund_unapplied(payment_id=int(item.key))


@shared_task(name="billing.tasks.apply_provider_event_task", ignore_result=True)
def apply_provider_event_task(item_id: int) -> None:
    from .payments import events

    with outbox.claim(item_id) as item:
        if item is not None:
            events.apply_received(event_row_id=int(item.key))


@shared_task(name="billing.tasks.send_dunning_email_task", ignore_result=True)
def send_dunning_email_task(item_id: int) -> None:
    from . import dunning

    with outbox.claim(item_id) as item:
        if item is not None:
            dunning.send_notice(notice_id=int(item.key))


@shared_task(name="billing.tasks.dunning_task", ignore_result=True)
def dunning_task() -> None:
    """Periodic: renew or end subscriptions whose period is over, then chase unpaid invoices."""
    from . import dunning, subscriptions

    subscriptions.advance_due()
    dunning.run()


@shared_task(name="billing.tasks.send_invoice_email_task", ignore_result=True)
def send_invoice_email_task(item_id: int) -> None:
    from . import invoices

    with outbox.claim(item_id) as item:
        if item is not None:
            invoices.send_issued_email(invoice_id=int(item.key))


@shared_task(name="billing.tasks.billing_run_task", ignore_result=True)
def billing_run_task(period: str = "") -> None:
    """Monthly (Celery beat): bill the previous month; or the month an operator asked for."""
    from . import runs

    runs.run(period or runs.previous_period())


@shared_task(name="billing.tasks.charge_card_on_file_task", ignore_result=True)
def charge_card_on_file_task(item_id: int) -> None:
    from .payments import events

    with outbox.claim(item_id) as item:
        if item is not None:
            events.charge_card_on_file(order_id=int(item.key))
