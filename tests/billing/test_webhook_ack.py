"""A Stripe webhook is acknowledged first and applied after the response (Stripe's advice: answer
2xx before any complex logic), by the outbox task `billing.tasks.apply_provider_event_task`.

The response is fast and means "received, verified, recorded once"; the payment is applied by a
worker, retried by the outbox until it can be (a refund reported before its payment waits for it
there instead of being refused back to Stripe)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from billing.models import CreditNote, Order, ProviderEvent
from billing.payments.events import APPLY_TASK
from core import outbox
from core.models import AuditEvent, OutboxItem
from orgs.models import Organization
from tests.billing.stripe_emulator import stripe_configured
from tests.billing.test_card_payments import buy_by_card, post_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_api(settings: Any) -> Any:
    with stripe_configured(settings) as emulator:
        yield emulator


def event_id(event: tuple[bytes, dict[str, str]]) -> str:
    return str(json.loads(event[0])["id"])


def apply_due() -> None:
    """What a worker does: run every due apply row (the sweeper sends them; tasks are eager)."""
    outbox.sweep()


def test_a_webhook_is_acknowledged_and_applied_after_the_response(
    cast, client_for, stripe_api, on_commit, django_capture_on_commit_callbacks
):
    with on_commit():
        order, payment, _ = buy_by_card(client_for(cast["outsider"]))
    completed = stripe_api.event(
        "checkout.session.completed", stripe_api.complete(payment.external_id)
    )
    with django_capture_on_commit_callbacks(execute=False) as after_response:
        response = post_event(*completed)
    assert response.status_code == 200 and response.json() == {"outcome": "received"}
    # recorded once, with what is needed to apply it, and queued; nothing applied yet
    row = ProviderEvent.objects.get()
    assert row.event_id == event_id(completed) and row.applied_at is None and row.outcome == ""
    assert row.payload["id"] == payment.external_id
    item = OutboxItem.objects.get(task_name=APPLY_TASK)
    assert item.key == str(row.pk) and item.done_at is None
    order.refresh_from_db()
    assert order.status == "awaiting_payment"
    assert not AuditEvent.objects.filter(action="billing.invoice.paid").exists()
    # a second delivery of the same event before the worker ran: nothing more is queued
    again = post_event(*completed)
    assert again.status_code == 200 and again.json() == {"outcome": "already received"}
    assert OutboxItem.objects.filter(task_name=APPLY_TASK).count() == 1

    for callback in after_response:  # the worker
        callback()
    order.refresh_from_db()
    row.refresh_from_db()
    assert order.status == "paid" and Organization.objects.get(slug="cardco").plan_code == "m"
    assert row.outcome == f"paid order {order.pk}" and row.applied_at is not None
    assert OutboxItem.objects.get(task_name=APPLY_TASK).done_at is not None
    assert AuditEvent.objects.filter(action="billing.invoice.paid").count() == 1
    assert post_event(*completed).json() == {"outcome": "already applied"}
    apply_due()  # nothing is due: applying again changes nothing
    assert Order.objects.get(pk=order.pk).status == "paid"
    assert AuditEvent.objects.filter(action="billing.invoice.paid").count() == 1


def test_a_refund_reported_before_its_payment_waits_for_it_in_the_outbox(
    cast, client_for, stripe_api, on_commit
):
    with on_commit():
        order, payment, _ = buy_by_card(client_for(cast["outsider"]))
    created = int(time.time())
    session = stripe_api.complete(payment.external_id)
    completed = stripe_api.event("checkout.session.completed", session, created=created)
    status, refund = stripe_api.create_refund(
        {"payment_intent": session["payment_intent"], "amount": "10000"}
    )
    assert status == 200
    charge = stripe_api.charges[session["payment_intent"]]
    refunded = stripe_api.event("charge.refunded", charge, created=created + 60)

    with on_commit():
        early = post_event(*refunded)
    assert early.status_code == 200  # received: Stripe need not send it again
    waiting = OutboxItem.objects.get(task_name=APPLY_TASK)
    assert waiting.done_at is None and "not applied yet" in waiting.last_error
    assert waiting.available_at > timezone.now()  # retried later, with backoff
    assert ProviderEvent.objects.get(event_id=event_id(refunded)).applied_at is None
    assert not CreditNote.objects.exists()

    with on_commit():
        assert post_event(*completed).status_code == 200
    order.refresh_from_db()
    assert order.status == "paid"
    OutboxItem.objects.filter(pk=waiting.pk).update(available_at=timezone.now() - timedelta(1))
    with on_commit():
        apply_due()
    note = CreditNote.objects.get()
    assert note.amount_minor == 10_000 and note.invoice == order.invoice
    assert note.external_id == f"stripe:{refund['id']}"
    assert ProviderEvent.objects.get(event_id=event_id(refunded)).applied_at is not None
    assert OutboxItem.objects.get(pk=waiting.pk).done_at is not None


def test_an_event_is_applied_once_even_if_its_row_is_run_twice(
    cast, client_for, stripe_api, on_commit
):
    from billing.payments import events

    with on_commit():
        order, payment, _ = buy_by_card(client_for(cast["outsider"]))
        post_event(
            *stripe_api.event(
                "checkout.session.completed", stripe_api.complete(payment.external_id)
            )
        )
    row = ProviderEvent.objects.get()
    assert events.apply_received(event_row_id=row.pk) == f"paid order {order.pk}"
    assert AuditEvent.objects.filter(action="billing.invoice.paid").count() == 1


def test_an_event_received_while_card_payments_are_off_waits_with_one_warning_line(
    cast, client_for, settings, on_commit, django_capture_on_commit_callbacks, caplog
):
    """The provider's configuration went away between the acknowledgement and the worker (keys
    rotated, card payments switched off): the row waits in the outbox, retried with backoff, and
    each attempt logs one warning line (an operator's fault to fix, not a bug's traceback)."""
    with stripe_configured(settings) as stripe_api:
        with on_commit():
            order, payment, _ = buy_by_card(client_for(cast["outsider"]))
        completed = stripe_api.event(
            "checkout.session.completed", stripe_api.complete(payment.external_id)
        )
        with django_capture_on_commit_callbacks(execute=False) as after_response:
            assert post_event(*completed).status_code == 200
    settings.PAYMENT_PROVIDER = ""  # card payments switched off
    caplog.set_level("INFO", logger="core.outbox")
    for callback in after_response:  # the worker, after card payments were switched off
        callback()
    item = OutboxItem.objects.get(task_name=APPLY_TASK)
    assert item.done_at is None and "stripe is not configured" in item.last_error
    assert item.available_at > timezone.now()  # retried later, with backoff
    assert ProviderEvent.objects.get().applied_at is None
    assert Order.objects.get(pk=order.pk).status == "awaiting_payment"
    failed = [r for r in caplog.records if r.name == "core.outbox" and "failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelname == "WARNING", failed
    assert failed[0].exc_info is None and "not configured" in failed[0].getMessage()
