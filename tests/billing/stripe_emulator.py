"""A loopback emulator of the parts of the Stripe API the portal uses, for tests and benches.

Objects are built from Stripe's own example objects (`../shared/specs/stripe/fixtures3.json`,
from Stripe's public OpenAPI repository) with the fields of each call filled in, so the real
`stripe` SDK parses what it would parse from Stripe. Webhooks are signed as Stripe signs them:
`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.

Served (HTTP/1.1 on 127.0.0.1, a thread):
* `POST /v1/checkout/sessions` (form-encoded, bracketed keys, `Idempotency-Key` honoured),
  `GET /v1/checkout/sessions/<id>`, `POST /v1/refunds`;
* a saved card: `GET /v1/customers/<id>/payment_methods` (the card a completed checkout saved)
  and `POST /v1/payment_intents` with `off_session` and `confirm` (charged at once; declined with
  a 402 `card_declined` when `decline_off_session` is set);
* the hosted payment page `GET /pay/<session>` with a *Pay* button (`POST /pay/<session>`), which
  completes the session, sends `checkout.session.completed` to `webhook_url` and redirects to the
  session's `success_url` — what a browser does on checkout.stripe.com.

Every request is checked against what Stripe requires of it (bearer key, known parameters,
integer minor-unit amounts, lower-case ISO currency); problems go to `violations`.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import requests

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "specs" / "stripe" / "fixtures3.json"
SESSION_PARAMS = {
    "mode",
    "client_reference_id",
    "success_url",
    "cancel_url",
    "line_items",
    "payment_intent_data",
    "metadata",
    "customer",
    "customer_creation",
    "expires_at",
}


def fixtures() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text())["resources"]


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header value for `body`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            fresh: Any = [] if not last and parts[index + 1].isdigit() else {}
            if isinstance(node, list):
                position = int(part)
                node.extend([None] * (position + 1 - len(node)))
                if last:
                    node[position] = value
                else:
                    node[position] = node[position] if node[position] is not None else fresh
                    node = node[position]
            elif last:
                node[part] = value
            else:
                node = node.setdefault(part, fresh)
    return root


class StripeEmulator:
    def __init__(
        self, *, webhook_secret: str = "whsec_test_emulator", api_key: str = "sk_test_emulator"
    ) -> None:
        self.webhook_secret = webhook_secret
        self.api_key = api_key
        self.webhook_url = ""
        self.templates = fixtures()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}  # by payment intent
        self.cards: dict[str, str] = {}  # customer → the payment method a checkout saved
        self.intents: dict[str, dict[str, Any]] = {}
        self.decline_off_session = False
        self.idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.violations: list[str] = []
        self.delivered: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StripeEmulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                emulator._dispatch(self, "GET")

            def do_POST(self) -> None:
                emulator._dispatch(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- objects -------------------------------------------------------------------------------
    def _object(self, kind: str, **fields: Any) -> dict[str, Any]:
        obj = copy.deepcopy(self.templates[kind])
        obj.update(fields)
        return obj

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_test_{secrets.token_hex(12)}"

    def create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_session(params)
        items = params.get("line_items") or []
        amount = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
        currency = items[0]["price_data"]["currency"] if items else None
        session_id = self._new_id("cs")
        now = int(time.time())
        session = self._object(
            "checkout.session",
            id=session_id,
            object="checkout.session",
            mode=params.get("mode"),
            status="open",
            payment_status="unpaid",
            amount_subtotal=amount,
            amount_total=amount,
            currency=currency,
            client_reference_id=params.get("client_reference_id"),
            customer=params.get("customer"),
            customer_creation=params.get("customer_creation"),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            metadata=params.get("metadata") or {},
            payment_intent=None,
            created=now,
            expires_at=int(params.get("expires_at") or now + 24 * 3600),
            url=f"{self.url}/pay/{session_id}",
            livemode=False,
        )
        with self._lock:
            self.sessions[session_id] = session
        return session

    def _check_session(self, params: dict[str, Any]) -> None:
        unknown = set(params) - SESSION_PARAMS
        if unknown:
            self.violations.append(
                f"checkout.sessions.create: unknown parameters {sorted(unknown)}"
            )
        if params.get("mode") != "payment":
            self.violations.append("checkout.sessions.create: mode must be payment")
        if not params.get("success_url"):
            self.violations.append("checkout.sessions.create: success_url is required")
        if params.get("customer") and params.get("customer_creation"):
            self.violations.append("customer and customer_creation are mutually exclusive")
        for item in params.get("line_items") or []:
            data = item.get("price_data") or {}
            amount, currency = str(data.get("unit_amount", "")), str(data.get("currency", ""))
            if not amount.isdigit():
                self.violations.append(f"unit_amount {amount!r} is not an integer of minor units")
            if len(currency) != 3 or currency != currency.lower():
                self.violations.append(f"currency {currency!r} is not a lower-case ISO code")

    def complete(self, session_id: str) -> dict[str, Any]:
        """The customer paid: the session completes with a customer, payment intent and charge."""
        with self._lock:
            session = self.sessions[session_id]
            if session["status"] != "open":
                return session
            intent = self._new_id("pi")
            customer = session.get("customer") or self._new_id("cus")
            self.cards.setdefault(customer, self._new_id("pm"))
            session.update(
                status="complete", payment_status="paid", payment_intent=intent, customer=customer
            )
            self.charges[intent] = self._charge(
                session["amount_total"], session["currency"], customer, intent
            )
        return session

    def _charge(self, amount: int, currency: str, customer: str, intent: str) -> dict[str, Any]:
        """A captured charge of `amount` (what refunds are made against)."""
        return self._object(
            "charge",
            id=self._new_id("ch"),
            amount=amount,
            amount_captured=amount,
            amount_refunded=0,
            captured=True,
            paid=True,
            refunded=False,
            currency=currency,
            customer=customer,
            payment_intent=intent,
            refunds={"object": "list", "data": [], "has_more": False, "url": "/v1/refunds"},
        )

    def expire(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            session = self.sessions[session_id]
            if session["status"] == "open":
                session["status"] = "expired"
        return session

    def create_refund(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent = params.get("payment_intent", "")
        charge = self.charges.get(intent)
        if charge is None:
            return 404, _error("No such payment_intent: " + intent, "resource_missing")
        amount = int(params.get("amount") or charge["amount"] - charge["amount_refunded"])
        if amount <= 0 or charge["amount_refunded"] + amount > charge["amount"]:
            return 400, _error("Refund amount exceeds what was charged.", "amount_too_large")
        refund = self._object(
            "refund",
            id=self._new_id("re"),
            amount=amount,
            charge=charge["id"],
            currency=charge["currency"],
            payment_intent=intent,
            status="succeeded",
            metadata=params.get("metadata") or {},
            created=int(time.time()),
        )
        with self._lock:
            self.refunds[refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            charge["refunds"]["data"].append(refund)
        return 200, refund

    def payment_methods(self, customer: str) -> tuple[int, dict[str, Any]]:
        card = self.cards.get(customer)
        if card is None:
            return 404, _error(f"No such customer: '{customer}'", "resource_missing")
        method = self._object("payment_method", id=card, customer=customer, type="card")
        return 200, {"object": "list", "data": [method], "has_more": False, "url": "/v1/x"}

    def create_intent(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        amount, currency = str(params.get("amount", "")), str(params.get("currency", ""))
        if not amount.isdigit():
            self.violations.append(f"payment_intents: amount {amount!r} is not minor units")
        if len(currency) != 3 or currency != currency.lower():
            self.violations.append(f"payment_intents: currency {currency!r} is not lower-case ISO")
        customer, method = params.get("customer", ""), params.get("payment_method", "")
        if self.cards.get(customer) != method:
            return 400, _error("The payment method is not the customer's.", "resource_missing")
        if params.get("off_session") != "true" or params.get("confirm") != "true":
            self.violations.append(
                "payment_intents: a saved card is charged off_session, confirmed"
            )
        intent_id = self._new_id("pi")
        intent = self._object(
            "payment_intent",
            id=intent_id,
            amount=int(amount or 0),
            amount_received=int(amount or 0),
            currency=currency,
            customer=customer,
            payment_method=method,
            metadata=params.get("metadata") or {},
            status="succeeded",
            last_payment_error=None,
            next_action=None,
            created=int(time.time()),
        )
        if self.decline_off_session:
            intent.update(status="requires_payment_method", amount_received=0)
            self.intents[intent_id] = intent
            error = _error("Your card was declined.", "card_declined")
            error["error"].update(type="card_error", payment_intent=intent)
            return 402, error
        with self._lock:
            self.intents[intent_id] = intent
            self.charges[intent_id] = self._charge(intent["amount"], currency, customer, intent_id)
        return 200, intent

    # --- webhooks ------------------------------------------------------------------------------
    def event(
        self, type_: str, obj: dict[str, Any], *, created: int | None = None, event_id: str = ""
    ) -> tuple[bytes, dict[str, str]]:
        """A signed webhook delivery: (body, headers), as Stripe POSTs it."""
        event = self._object(
            "event",
            id=event_id or self._new_id("evt"),
            object="event",
            type=type_,
            created=int(time.time()) if created is None else created,
            data={"object": copy.deepcopy(obj)},
            api_version="2025-01-27.acacia",
            livemode=False,
            pending_webhooks=1,
        )
        body = json.dumps(event).encode()
        return body, {
            "Content-Type": "application/json",
            "Stripe-Signature": sign(body, self.webhook_secret),
        }

    def deliver(self, body: bytes, headers: dict[str, str]) -> int:
        response = requests.post(self.webhook_url, data=body, headers=headers, timeout=10)
        self.delivered.append((json.loads(body)["type"], response.status_code))
        return response.status_code

    # --- HTTP ----------------------------------------------------------------------------------
    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        params = nest(parse_qsl(raw, keep_blank_values=True))
        path = handler.path.split("?", 1)[0]
        self.requests.append((method, path, params))
        if path.startswith("/pay/"):
            return self._hosted_page(handler, method, path.removeprefix("/pay/"))
        if path == "/favicon.ico":  # the hosted page's browser asks for it
            return _send(handler, 404, _error("No favicon", "resource_missing"))
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.violations.append(f"{method} {path}: missing or wrong API key")
            return _send(handler, 401, _error("Invalid API Key provided.", "api_key_invalid"))
        key = handler.headers.get("Idempotency-Key")
        if method == "POST" and key and key in self.idempotent:
            status, body = self.idempotent[key]
            return _send(handler, status, body)
        status, body = self._route(method, path, params)
        if method == "POST" and key and status < 500:
            self.idempotent[key] = (status, body)
        _send(handler, status, body)

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if (method, path) == ("POST", "/v1/checkout/sessions"):
            return 200, self.create_session(params)
        if method == "GET" and path.startswith("/v1/checkout/sessions/"):
            session = self.sessions.get(path.rsplit("/", 1)[1])
            return (
                (200, session) if session else (404, _error("No such session", "resource_missing"))
            )
        if (method, path) == ("POST", "/v1/refunds"):
            return self.create_refund(params)
        if (
            method == "GET"
            and path.startswith("/v1/customers/")
            and path.endswith("/payment_methods")
        ):
            return self.payment_methods(path.split("/")[3])
        if (method, path) == ("POST", "/v1/payment_intents"):
            return self.create_intent(params)
        self.violations.append(f"{method} {path}: not an endpoint the emulator knows")
        return 404, _error(f"Unrecognized request URL ({method}: {path}).", "resource_missing")

    def _hosted_page(self, handler: BaseHTTPRequestHandler, method: str, session_id: str) -> None:
        session = self.sessions.get(session_id)
        if session is None:
            return _send(handler, 404, _error("No such session", "resource_missing"))
        if method == "POST":
            self.complete(session_id)
            if self.webhook_url:
                self.deliver(*self.event("checkout.session.completed", session))
            handler.send_response(303)
            handler.send_header("Location", session["success_url"])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        amount = f"{session['currency'].upper()} {session['amount_total']}"
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Stripe test checkout"
            "</title></head><body><main><h1>Test checkout</h1>"
            f"<p id=amount>{html.escape(amount)} (minor units)</p>"
            f"<form method=post action='/pay/{session_id}'><button type=submit>Pay</button></form>"
            "</main></body></html>"
        ).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(page)))
        handler.end_headers()
        handler.wfile.write(page)
        return None


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "message": message, "code": code}}


def _send(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
    handler.end_headers()
    handler.wfile.write(data)


@contextmanager
def stripe_configured(settings: Any, *, webhook_url: str = "") -> Iterator[StripeEmulator]:
    """A running emulator with the portal's Stripe settings pointing at it (for fixtures);
    fails the test if the portal broke Stripe's API contract."""
    emulator = StripeEmulator().start()
    emulator.webhook_url = webhook_url
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = emulator.api_key
    settings.STRIPE_WEBHOOK_SECRET = emulator.webhook_secret
    settings.STRIPE_API_BASE = emulator.url
    settings.STRIPE_CHECKOUT_ORIGIN = emulator.url  # its hosted page stands in for Stripe's
    try:
        yield emulator
    finally:
        emulator.stop()
    assert emulator.violations == [], "Stripe API contract violated"
