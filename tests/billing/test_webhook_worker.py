"""A card payment's webhook answered by the portal and applied by a real Celery worker process
over Valkey, on PostgreSQL (the CI services run): the response does not wait for the payment."""

from __future__ import annotations

from typing import Any

import pytest

from billing.models import Order, ProviderEvent
from billing.payments.events import APPLY_TASK
from core.models import OutboxItem
from tests.billing.stripe_emulator import stripe_configured
from tests.billing.test_card_payments import buy_by_card, post_event
from tests.pooling import wait_for
from tests.worker import delivering_worker

# One Celery worker at a time: every worker consumes the same Valkey queue.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("celery-worker")]


def test_a_worker_applies_the_webhook_the_portal_answered(
    settings: Any, tmp_path: Any, cast: Any, client_for: Any
) -> None:
    with stripe_configured(settings) as stripe_api:
        order, payment, _ = buy_by_card(client_for(cast["outsider"]))
        stripe_env = {
            "PAYMENT_PROVIDER": "stripe",
            "STRIPE_SECRET_KEY": stripe_api.api_key,
            "STRIPE_WEBHOOK_SECRET": stripe_api.webhook_secret,
            "STRIPE_API_BASE": stripe_api.url,
        }
        with delivering_worker(settings, tmp_path / "worker.log", env=stripe_env):
            completed = stripe_api.event(
                "checkout.session.completed", stripe_api.complete(payment.external_id)
            )
            response = post_event(*completed)
            assert response.status_code == 200 and response.json() == {"outcome": "received"}
            assert wait_for(lambda: Order.objects.get(pk=order.pk).status == "paid", timeout=30)
            row = ProviderEvent.objects.get()
            assert row.outcome == f"paid order {order.pk}" and row.applied_at is not None
            assert wait_for(
                lambda: not OutboxItem.objects.pending().filter(task_name=APPLY_TASK).exists(),
                timeout=30,
            )
            assert post_event(*completed).json() == {"outcome": "already applied"}
