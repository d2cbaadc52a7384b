"""The Stripe adapter (the `stripe` SDK): Checkout Sessions, webhook signatures, refunds.

Amounts are sent in the currency's minor units (`unit_amount`), which is Stripe's own convention
(for three-decimal currencies such as OMR too); the currency goes lower-case, as Stripe names it.
The first payment creates a Stripe customer and saves the card (`setup_future_usage`), so the
Organization has a card on file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings

from ..models import Order, Payment
from . import BadSignature, Charged, Checkout, PaymentError, ProviderEvent


class StripeProvider:
    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        api_base: str,
        timeout: int,
        checkout_origin: str = "https://checkout.stripe.com",
    ) -> None:
        self.webhook_secret = webhook_secret
        self.checkout_origin = checkout_origin
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    def start_checkout(
        self, *, order: Order, success_url: str, cancel_url: str, customer: str | None
    ) -> Checkout:
        description = ", ".join(line["name"] for line in order.lines)[:500]
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": str(order.pk),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": order.currency.lower(),
                        "unit_amount": order.due_minor,
                        "product_data": {"name": f"Order {order.pk}: {description}"},
                    },
                }
            ],
            "payment_intent_data": {
                "setup_future_usage": "off_session",
                "metadata": {"order": str(order.pk)},
            },
            "metadata": {"order": str(order.pk), "quote": str(order.quote_id or "")},
        }
        if customer:
            params["customer"] = customer
        else:
            params["customer_creation"] = "always"
        attempt = order.payments.count() + 1
        try:
            session = self.client.v1.checkout.sessions.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": f"order-{order.pk}-checkout-{attempt}"},
            )
        except stripe.StripeError as exc:
            raise PaymentError(f"Stripe: {exc.user_message or exc}") from exc
        expires = datetime.fromtimestamp(session.expires_at, UTC) if session.expires_at else None
        return Checkout(external_id=session.id, url=session.url or "", expires_at=expires)

    def parse_event(self, body: bytes, headers: dict[str, str]) -> ProviderEvent:
        """Verify `Stripe-Signature` with the SDK (HMAC-SHA256 of `t.body`, within the tolerance),
        then read the event (plain JSON: the portal needs a few fields of the object)."""
        try:
            stripe.WebhookSignature.verify_header(
                body,
                headers.get("Stripe-Signature", ""),
                self.webhook_secret,
                settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
            )
            event = json.loads(body)
            return ProviderEvent(
                id=str(event["id"]),
                type=str(event["type"]),
                created=datetime.fromtimestamp(int(event["created"]), UTC),
                object=dict(event["data"]["object"]),
            )
        except (stripe.SignatureVerificationError, ValueError, KeyError, TypeError) as exc:
            raise BadSignature(str(exc)) from exc

    def refund(self, *, payment: Payment, amount_minor: int, reason: str) -> str:
        try:
            refund = self.client.v1.refunds.create(
                {
                    "payment_intent": payment.payment_intent,
                    "amount": amount_minor,
                    "metadata": {"order": str(payment.order_id), "reason": reason[:200]},
                },
                {"idempotency_key": f"refund-{payment.pk}-{amount_minor}-{reason[:40]}"},
            )
        except stripe.StripeError as exc:
            raise PaymentError(f"Stripe: {exc.user_message or exc}") from exc
        return str(refund.id)

    def charge_saved_card(self, *, order: Order, customer: str) -> Charged:
        """Charge the card the customer saved (its first payment method) for the order's
        `due_minor`, off-session; once per order (idempotency key)."""
        try:
            methods = self.client.v1.customers.payment_methods.list(
                customer, {"type": "card", "limit": 1}
            )
        except stripe.StripeError as exc:
            raise PaymentError(f"Stripe: {exc.user_message or exc}") from exc
        if not methods.data:
            return Charged(intent="", succeeded=False, problem="no card on file")
        try:
            intent = self.client.v1.payment_intents.create(
                {
                    "amount": order.due_minor,
                    "currency": order.currency.lower(),
                    "customer": customer,
                    "payment_method": methods.data[0].id,
                    "off_session": True,
                    "confirm": True,
                    "description": f"Order {order.pk}",
                    "metadata": {"order": str(order.pk)},
                },
                {"idempotency_key": f"order-{order.pk}-off-session"},
            )
        except stripe.CardError as exc:
            failed: Any = (exc.error.payment_intent if exc.error else None) or {}
            intent_id = str(failed.get("id", "")) if isinstance(failed, dict) else str(failed.id)
            return Charged(intent=intent_id, succeeded=False, problem=exc.user_message or str(exc))
        except stripe.StripeError as exc:
            raise PaymentError(f"Stripe: {exc.user_message or exc}") from exc
        return Charged(
            intent=str(intent.id),
            succeeded=intent.status == "succeeded",
            problem="" if intent.status == "succeeded" else f"payment {intent.status}",
        )
