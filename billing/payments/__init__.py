"""Payment providers: how money for an order's invoice arrives.

* **manual** (bank transfer, receipt): always there; an operator records the payment
  (`billing.checkout.record_payment`, Console → BSS → Orders).
* **card**: a provider adapter chosen by `PAYMENT_PROVIDER` (today `stripe`). It opens a hosted
  checkout for an order's `due_minor` (and saves the card for later periods), charges that saved
  card off-session for renewals and monthly invoices, verifies and parses webhooks, and refunds. Without one, checkout says card payment is not available and
  offers invoice payment.

Events from a provider are applied once (`billing.payments.events.handle`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings

from core.errors import DeliveryError

from ..models import Order, Payment

MANUAL = "manual"
NOT_AVAILABLE = "Card payment is not available here yet: pay by invoice (bank transfer)."


class PaymentError(Exception):
    """The provider refused or could not be reached; nothing was charged."""


class ProviderNotConfigured(PaymentError, DeliveryError):
    """Work for a provider that is not configured here (any more): retried by the outbox with
    one warning line per attempt (an operator's setting to fix, not a bug's traceback)."""


class BadSignature(Exception):
    """A webhook whose signature does not verify (or is too old): never applied."""


@dataclass(frozen=True)
class ProviderEvent:
    """A verified webhook event, reduced to what the portal applies."""

    id: str
    type: str
    created: datetime
    object: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Charged:
    """An off-session charge of a saved card: `succeeded`, or why not (declined, needs the
    customer: the order stays due and is chased as usual)."""

    intent: str
    succeeded: bool
    problem: str = ""


@dataclass(frozen=True)
class Checkout:
    external_id: str
    url: str
    expires_at: datetime | None = None


class CardProvider(Protocol):
    name: str
    checkout_origin: str  # where the hosted checkout page lives (for the CSP's form-action)

    def start_checkout(
        self, *, order: Order, success_url: str, cancel_url: str, customer: str | None
    ) -> Checkout: ...

    def parse_event(self, body: bytes, headers: dict[str, str]) -> ProviderEvent: ...

    def refund(self, *, payment: Payment, amount_minor: int, reason: str) -> str: ...

    def charge_saved_card(self, *, order: Order, customer: str) -> Charged: ...


def card_provider() -> CardProvider | None:
    """The configured card provider, or None (invoice payment only). One client per
    configuration, reused by every request (its HTTP session keeps connections alive)."""
    if settings.PAYMENT_PROVIDER == "stripe":
        return _stripe(
            settings.STRIPE_SECRET_KEY,
            settings.STRIPE_WEBHOOK_SECRET,
            settings.STRIPE_API_BASE,
            settings.STRIPE_TIMEOUT_SECONDS,
            settings.STRIPE_CHECKOUT_ORIGIN,
        )
    return None


@functools.lru_cache(maxsize=4)
def _stripe(
    api_key: str, webhook_secret: str, api_base: str, timeout: int, checkout_origin: str
) -> CardProvider:
    from .stripe_provider import StripeProvider

    return StripeProvider(
        api_key=api_key,
        webhook_secret=webhook_secret,
        api_base=api_base,
        timeout=timeout,
        checkout_origin=checkout_origin,
    )
