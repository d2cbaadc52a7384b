"""Card payments through the Stripe adapter, against the Stripe emulator (tests/billing/
stripe_emulator.py): hosted checkout, signed webhooks applied once, in any order, refunds."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from billing import ledger
from billing.models import (
    CreditNote,
    Invoice,
    LedgerEntry,
    Order,
    Payment,
    PaymentCustomer,
    ProviderEvent,
    Quote,
    Subscription,
)
from core import outbox
from core.models import AuditEvent, OutboxItem
from orgs.models import Organization
from tests.billing.helpers import quote_form
from tests.billing.stripe_emulator import sign, stripe_configured

pytestmark = pytest.mark.django_db
WEBHOOK = "/billing/webhooks/stripe/"
WIZARD = {"slug": "cardco", "display_name": "Card Co", "plan": "m", "region": "hz-fsn-rtz-prod"}


@pytest.fixture
def stripe_api(settings: Any) -> Any:
    with stripe_configured(settings) as emulator:
        yield emulator


def buy_by_card(client: Client, **data: Any) -> tuple[Order, Payment, Any]:
    """Wizard → quote → confirm with card: the order, its payment and the redirect."""
    response = client.post("/checkout/", {**WIZARD, **data})
    page = client.get(response["Location"])
    action, token = quote_form(page)
    redirect = client.post(action, {"quote": token, "payment": "card"})
    order = Order.objects.get(organization__slug=data.get("slug", WIZARD["slug"]))
    return order, Payment.objects.get(order=order), redirect


def post_event(body: bytes, headers: dict[str, str]) -> Any:
    return Client().post(
        WEBHOOK,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
    )


def outcome_of(event: tuple[bytes, dict[str, str]]) -> str:
    """What applying a received webhook did (the worker records it on the event's row)."""
    row = ProviderEvent.objects.get(event_id=json.loads(event[0])["id"])
    assert row.applied_at is not None, f"{row} is not applied"
    return row.outcome


def test_first_purchase_by_card_pays_the_quote_and_keeps_the_card(
    cast, client_for, stripe_api, on_commit
):
    client = client_for(cast["outsider"])
    with on_commit():
        order, payment, redirect = buy_by_card(client)
    assert redirect.status_code == 302 and redirect["Location"] == payment.url
    assert redirect["Location"].startswith(stripe_api.url + "/pay/cs_test_")
    # Stripe was asked for exactly what the quote said is due, in minor units
    _, _, params = next(r for r in stripe_api.requests if r[1] == "/v1/checkout/sessions")
    item = params["line_items"][0]["price_data"]
    assert item["unit_amount"] == "30450" and item["currency"] == "omr"
    assert params["customer_creation"] == "always"
    assert params["payment_intent_data"]["setup_future_usage"] == "off_session"
    org = Organization.objects.get(slug="cardco")
    assert order.status == "awaiting_payment" and org.plan_code == ""
    session = stripe_api.complete(payment.external_id)
    completed = stripe_api.event("checkout.session.completed", session)
    with on_commit():
        response = post_event(*completed)
    assert response.status_code == 200 and response.json() == {"outcome": "received"}
    assert outcome_of(completed) == f"paid order {order.pk}"
    order.refresh_from_db()
    org.refresh_from_db()
    assert order.status == "paid" and Invoice.objects.get(order=order).status == "paid"
    assert org.plan_code == "m" and Subscription.objects.get(organization=org).plan_code == "m"
    assert PaymentCustomer.objects.get(organization=org).external_id == session["customer"]
    movements = sorted(
        LedgerEntry.objects.filter(organization=org).values_list("reason", "amount_minor")
    )
    assert movements == [("order", -30_450), ("payment", 30_450)]
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    # the next card payment of this Organization reuses the saved customer
    page = client.get("/billing/cardco/")
    assert b"OMR 0.000" in page.content and b"Paid" in page.content


def test_a_replayed_webhook_is_applied_once(cast, client_for, stripe_api, on_commit):
    with on_commit():
        _, payment, _ = buy_by_card(client_for(cast["outsider"]))
    body, headers = stripe_api.event(
        "checkout.session.completed", stripe_api.complete(payment.external_id)
    )
    with on_commit():
        first = post_event(body, headers)
        again = post_event(body, headers)
    assert first.status_code == 200 and again.status_code == 200
    assert again.json()["outcome"] == "already received"  # before the worker applied the first
    assert post_event(body, headers).json()["outcome"] == "already applied"
    assert ProviderEvent.objects.count() == 1
    assert LedgerEntry.objects.filter(reason="payment").count() == 1
    assert AuditEvent.objects.filter(action="billing.invoice.paid").count() == 1


def test_a_webhook_with_a_bad_signature_changes_nothing(cast, client_for, stripe_api, on_commit):
    with on_commit():
        order, payment, _ = buy_by_card(client_for(cast["outsider"]))
    body, headers = stripe_api.event(
        "checkout.session.completed", stripe_api.complete(payment.external_id)
    )
    forged = {"Stripe-Signature": sign(body, "whsec_someone_else")}
    tampered = body.replace(b'"amount_total": 30450', b'"amount_total": 1')
    stale = {"Stripe-Signature": sign(body, stripe_api.webhook_secret, int(time.time()) - 3600)}
    for sent, sent_headers in (
        (body, forged),
        (tampered, headers),
        (body, stale),
        (body, {"Stripe-Signature": ""}),
    ):
        response = post_event(sent, sent_headers)
        assert response.status_code == 400
        assert response.json() == {"errors": {"signature": ["The signature does not verify."]}}
    order.refresh_from_db()
    assert order.status == "awaiting_payment" and not ProviderEvent.objects.exists()
    assert not LedgerEntry.objects.filter(reason="payment").exists()


def test_webhooks_out_of_order(cast, client_for, stripe_api, on_commit, operator_client):
    with on_commit():
        order, payment, _ = buy_by_card(client_for(cast["outsider"]))
    created = int(time.time())
    session = stripe_api.complete(payment.external_id)
    completed = stripe_api.event("checkout.session.completed", session, created=created)
    expired = stripe_api.event(
        "checkout.session.expired", {**session, "status": "expired"}, created=created - 60
    )
    # a refund made in Stripe's dashboard, reported before the payment it refunds
    status, refund = stripe_api.create_refund(
        {"payment_intent": session["payment_intent"], "amount": "10000"}
    )
    assert status == 200
    charge = stripe_api.charges[session["payment_intent"]]
    refunded = stripe_api.event("charge.refunded", charge, created=created + 60)
    with (
        on_commit()
    ):  # received; applying it waits for the payment (tests/billing/test_webhook_ack)
        assert post_event(*refunded).status_code == 200
    assert not CreditNote.objects.exists()
    with on_commit():
        assert post_event(*completed).status_code == 200
    with on_commit():
        assert post_event(*expired).status_code == 200
    assert outcome_of(expired).startswith("ignored")
    order.refresh_from_db()
    assert order.status == "paid" and Organization.objects.get(slug="cardco").plan_code == "m"
    OutboxItem.objects.filter(done_at__isnull=True).update(available_at=timezone.now())
    with on_commit():
        outbox.sweep()  # the refund's retry comes due
    note = CreditNote.objects.get()
    assert note.amount_minor == 10_000 and note.invoice == order.invoice
    assert note.external_id == f"stripe:{refund['id']}"
    assert post_event(*refunded).json()["outcome"] == "already applied"
    assert CreditNote.objects.count() == 1


def test_a_payment_for_an_expired_quote_is_refunded(cast, client_for, stripe_api, on_commit):
    vouchers_credit = 5_000
    from billing import vouchers

    vouchers.issue_vouchers(
        by=None,
        terms=vouchers.VoucherTerms(credit_minor=vouchers_credit),
        code="LATE-PAYER-2026-XY",
    )
    client = client_for(cast["outsider"])
    with on_commit():
        order, payment, _ = buy_by_card(client, code="LATE-PAYER-2026-XY")
    assert order.credit_applied_minor == 5_000 and order.due_minor == 25_450
    org = order.organization
    assert ledger.balance(org) == 0
    # the checkout ran out: the quote is over, the order is cancelled, the held credit comes back
    gone = stripe_api.event(
        "checkout.session.expired",
        {**stripe_api.sessions[payment.external_id], "status": "expired"},
    )
    with on_commit():
        post_event(*gone)
    assert outcome_of(gone) == f"cancelled order {order.pk}"
    order.refresh_from_db()
    assert order.status == "cancelled" and order.invoice.status == "void"
    assert ledger.balance(org) == 5_000
    # then the payment arrives after all (the customer had paid in another tab): it goes back
    late = stripe_api.event("checkout.session.completed", stripe_api.complete(payment.external_id))
    with on_commit():
        assert post_event(*late).status_code == 200
    assert outcome_of(late).startswith("refunding")
    payment.refresh_from_db()
    assert payment.status == "refunded" and "cancelled" in payment.problem
    [refund] = stripe_api.refunds.values()
    assert refund["amount"] == 25_450 and refund["payment_intent"] == payment.payment_intent
    org.refresh_from_db()
    assert org.plan_code == "" and not Subscription.objects.filter(organization=org).exists()
    assert (
        ledger.balance(org) == 5_000 and not LedgerEntry.objects.filter(reason="payment").exists()
    )


def test_confirming_an_expired_quote_shows_a_new_one(cast, client_for, stripe_api):
    client = client_for(cast["outsider"])
    response = client.post("/checkout/", WIZARD)
    page = client.get(response["Location"])
    action, token = quote_form(page)
    Quote.objects.update(expires_at=Quote.objects.get().created_at - timedelta(seconds=1))
    refused = client.post(action, {"quote": token, "payment": "card"})
    assert refused.status_code == 409
    assert "This quote has expired, review the new quote." in refused.content.decode()
    assert not Organization.objects.filter(slug="cardco").exists() and not Payment.objects.exists()
    assert not any(r[1] == "/v1/checkout/sessions" for r in stripe_api.requests)
    _, new_token = quote_form(refused)
    assert new_token != token
    # the old token stays refused
    assert client.post(action, {"quote": token, "payment": "card"}).status_code == 409


def test_a_payment_in_another_currency_is_not_applied(cast, client_for, stripe_api, on_commit):
    with on_commit():
        order, payment, _ = buy_by_card(client_for(cast["outsider"]))
    session = {**stripe_api.complete(payment.external_id), "currency": "usd"}
    completed = stripe_api.event("checkout.session.completed", session)
    with on_commit():
        post_event(*completed)
    assert outcome_of(completed) == "refunding: currency 'usd' is not OMR"
    order.refresh_from_db()
    assert order.status == "awaiting_payment" and Payment.objects.get().status == "refunded"


def test_operator_refunds_a_card_payment_as_a_credit_note(
    cast, client_for, stripe_api, operator_client, on_commit
):
    with on_commit():
        order, payment, _ = buy_by_card(client_for(cast["outsider"]))
    with on_commit():
        post_event(
            *stripe_api.event(
                "checkout.session.completed", stripe_api.complete(payment.external_id)
            )
        )
    assert (
        client_for(cast["outsider"])
        .post(f"/bss/orders/{order.pk}/refund/", {"amount": "1", "reason": "x"})
        .status_code
        == 404
    )
    too_much = operator_client.post(
        f"/bss/orders/{order.pk}/refund/", {"amount": "99", "reason": "goodwill"}
    )
    assert too_much.status_code == 302 and not CreditNote.objects.exists()
    response = operator_client.post(
        f"/bss/orders/{order.pk}/refund/", {"amount": "10.450", "reason": "outage"}
    )
    assert response.status_code == 302
    note = CreditNote.objects.get()
    assert note.amount_minor == 10_450 and note.number.startswith("CN-") and note.reason == "outage"
    [refund] = stripe_api.refunds.values()
    assert refund["amount"] == 10_450
    # Stripe's own report of that refund adds nothing
    charge = stripe_api.charges[payment.payment_intent or Payment.objects.get().payment_intent]
    reported = stripe_api.event("charge.refunded", charge)
    with on_commit():
        assert post_event(*reported).status_code == 200
    assert outcome_of(reported).startswith("credit notes")
    assert CreditNote.objects.count() == 1


def test_without_a_provider_checkout_offers_invoice_payment(cast, client_for):
    client = client_for(cast["outsider"])
    response = client.post("/checkout/", WIZARD)
    page = client.get(response["Location"]).content.decode()
    assert "Card payment is not available here yet: pay by invoice (bank transfer)." in page
    assert 'value="card"' not in page
    assert (
        Client().post(WEBHOOK, json.dumps({}), content_type="application/json").status_code == 404
    )


def test_an_expired_card_checkout_leaves_a_renewal_due(cast, client_for, stripe_api, on_commit):
    """Only an order the customer started lapses with its checkout; a renewal stays due (dunning
    chases it) instead of being voided while the service goes on."""
    from billing import subscriptions
    from tests.billing.helpers import order_plan

    ledger.append(org=cast["acme"], amount_minor=15_750, reason="test")
    order_plan(by=cast["owner"], org=cast["acme"], plan_code="s")
    sub = Subscription.objects.get(organization=cast["acme"], status="active")
    with on_commit():
        renewal = subscriptions.advance(sub_id=sub.pk, now=sub.period_end + timedelta(seconds=1))
    assert renewal.status == "awaiting_payment"
    client = client_for(cast["owner"])
    redirect = client.post(f"/billing/acme/orders/{renewal.pk}/card/")
    payment = Payment.objects.get(order=renewal)
    assert redirect.status_code == 302 and redirect["Location"] == payment.url
    expired = stripe_api.event(
        "checkout.session.expired",
        {**stripe_api.sessions[payment.external_id], "status": "expired"},
    )
    with on_commit():
        assert post_event(*expired).status_code == 200
    assert outcome_of(expired) == "expired"
    renewal.refresh_from_db()
    sub.refresh_from_db()
    payment.refresh_from_db()
    assert payment.status == "expired"
    assert renewal.status == "awaiting_payment" and renewal.invoice.status == "issued"
    assert sub.status == "active" and Organization.objects.get(slug="acme").plan_code == "s"
