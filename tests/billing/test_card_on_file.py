"""The card on file (issue 11's gap): a renewal and a month's usage invoice are charged to the card
the first checkout saved, off-session, once; a declined card leaves the invoice due for dunning."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from billing import runs, subscriptions
from billing.models import (
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Subscription,
)
from core.models import AuditEvent
from orgs.models import Organization
from tests.billing.stripe_emulator import stripe_configured
from tests.billing.test_card_payments import buy_by_card, post_event
from tests.billing.test_invoice_run import PERIOD, use

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_api(settings: Any) -> Any:
    with stripe_configured(settings) as emulator:
        yield emulator


def card_customer(cast: dict[str, Any], client_for: Any, stripe_api: Any, on_commit: Any) -> Order:
    """cardco bought plan M by card: its card is on file."""
    with on_commit():
        order, payment, _ = buy_by_card(client_for(cast["outsider"]))
    session = stripe_api.complete(payment.external_id)
    with on_commit():
        assert (
            post_event(*stripe_api.event("checkout.session.completed", session)).status_code == 200
        )
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def intents(stripe_api: Any) -> list[dict[str, Any]]:
    return [params for method, path, params in stripe_api.requests if path == "/v1/payment_intents"]


def test_a_renewal_is_charged_to_the_card_on_file_once(
    cast, client_for, stripe_api, on_commit
) -> None:
    first = card_customer(cast, client_for, stripe_api, on_commit)
    sub = Subscription.objects.get(pk=first.subscription_id)
    with on_commit():
        renewal = subscriptions.advance(sub_id=sub.pk, now=sub.period_end + timedelta(seconds=1))
    assert renewal is not None and renewal.kind == "renewal"
    renewal.refresh_from_db()
    invoice = Invoice.objects.get(order=renewal)
    assert renewal.status == OrderStatus.PAID and invoice.status == InvoiceStatus.PAID
    [params] = intents(stripe_api)
    assert params["amount"] == str(renewal.due_minor) == "30450" and params["currency"] == "omr"
    assert (params["off_session"], params["confirm"]) == ("true", "true")
    assert params["metadata"] == {"order": str(renewal.pk)}
    payment = Payment.objects.get(order=renewal)
    assert payment.status == PaymentStatus.SUCCEEDED and payment.payment_intent.startswith("pi_")
    assert invoice.payment_reference == payment.payment_intent
    assert LedgerEntry.objects.get(reference=f"payment:{invoice.number}").amount_minor == 30_450
    assert AuditEvent.objects.filter(action="billing.payment.card_on_file").count() == 1
    # the task running again (a redelivered outbox row) charges nothing more
    from billing.payments import events

    assert events.charge_card_on_file(order_id=renewal.pk) == "nothing to charge"
    assert len(intents(stripe_api)) == 1


def test_a_months_usage_invoice_is_charged_at_issue(
    cast, client_for, stripe_api, on_commit
) -> None:
    card_customer(cast, client_for, stripe_api, on_commit)
    org = Organization.objects.get(slug="cardco")
    use(org, "egress-gib", "150")  # 50 GiB at 20 baisa: 1.000 + 0.050 tax
    with on_commit():
        runs.run(PERIOD)
    invoice = Invoice.objects.get(organization=org, period=PERIOD)
    assert invoice.status == InvoiceStatus.PAID and invoice.total_minor == 1_050
    assert [p["amount"] for p in intents(stripe_api)] == ["1050"]


def test_a_declined_card_leaves_the_invoice_due(
    cast, client_for, stripe_api, on_commit, settings
) -> None:
    from billing import dunning

    card_customer(cast, client_for, stripe_api, on_commit)
    stripe_api.decline_off_session = True
    org = Organization.objects.get(slug="cardco")
    use(org, "egress-gib", "150")
    with on_commit():
        runs.run(PERIOD)
    invoice = Invoice.objects.get(organization=org, period=PERIOD)
    assert invoice.status == InvoiceStatus.ISSUED and invoice.order.status == "awaiting_payment"
    payment = Payment.objects.get(order=invoice.order)
    assert payment.status == PaymentStatus.EXPIRED and "declined" in payment.problem
    assert (
        not LedgerEntry.objects.filter(reason="payment", organization=org)
        .exclude(reference__startswith="payment:INV-")
        .exists()
    )
    assert not LedgerEntry.objects.filter(reference=f"payment:{invoice.number}").exists()
    # dunning chases it as any unpaid invoice
    settings.BILLING_REMINDER_DAYS = [3]
    assert dunning.run(now=invoice.issued_at + timedelta(days=3)) == 1


def test_without_a_saved_card_nothing_is_charged(cast, stripe_api, on_commit) -> None:
    Organization.objects.filter(pk=cast["acme"].pk).update(plan_code="flexi")
    use(cast["acme"], "cpu-core-hours", "10")
    with on_commit():
        runs.run(PERIOD)
    assert Invoice.objects.get(period=PERIOD).status == InvoiceStatus.ISSUED
    assert intents(stripe_api) == [] and not Payment.objects.exists()
