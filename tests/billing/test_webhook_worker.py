"""A card payment's webhook answered by the portal and applied by a real Celery worker process
over Valkey, on PostgreSQL (the CI services run): the response does not wait for the payment."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from billing.models import Order, ProviderEvent
from catalyst_portal.celery import app
from core.models import OutboxItem
from tests.billing.stripe_emulator import stripe_configured
from tests.billing.test_card_payments import buy_by_card, post_event
from tests.worker import start_worker, stop_worker

# One Celery worker at a time: every worker consumes the same Valkey queue.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("celery-worker")]


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_worker_applies_the_webhook_the_portal_answered(
    settings: Any, tmp_path: Any, cast: Any, client_for: Any
) -> None:
    if connection.vendor != "postgresql" or not settings.VALKEY_URL:
        pytest.skip(
            "needs DATABASE_URL (PostgreSQL) and VALKEY_URL: the worker shares the test database"
        )
    with stripe_configured(settings) as stripe_api:
        order, payment, _ = buy_by_card(client_for(cast["outsider"]))
        settings.CELERY_TASK_DEFAULT_QUEUE = f"test-{uuid.uuid4().hex}"
        proc = start_worker(
            git_root=settings.GIT_ROOT,
            log_path=tmp_path / "worker.log",
            env={
                "PAYMENT_PROVIDER": "stripe",
                "STRIPE_SECRET_KEY": stripe_api.api_key,
                "STRIPE_WEBHOOK_SECRET": stripe_api.webhook_secret,
                "STRIPE_API_BASE": stripe_api.url,
            },
        )
        settings.CELERY_TASK_ALWAYS_EAGER = False
        app.conf.task_always_eager = False
        try:
            completed = stripe_api.event(
                "checkout.session.completed", stripe_api.complete(payment.external_id)
            )
            response = post_event(*completed)
            assert response.status_code == 200 and response.json() == {"outcome": "received"}
            assert wait_for(lambda: Order.objects.get(pk=order.pk).status == "paid")
            row = ProviderEvent.objects.get()
            assert row.outcome == f"paid order {order.pk}" and row.applied_at is not None
            assert wait_for(
                lambda: (
                    not OutboxItem.objects.pending()
                    .filter(task_name="billing.tasks.apply_provider_event_task")
                    .exists()
                )
            )
            assert post_event(*completed).json() == {"outcome": "already applied"}
        finally:
            app.conf.task_always_eager = True
            stop_worker(proc)
