"""Property: whatever sequence of plan changes, credits, payments, cancellations, price changes and
renewals happens, the ledger, the orders and the subscription agree, and every charge is exactly
what a quote showed."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import checkout, ledger, pricing, quotes, subscriptions
from billing.models import LedgerEntry, Order, Plan, Subscription
from orgs.models import Organization

pytestmark = pytest.mark.django_db

PLANS = ["s", "m", "l", "xl", "flexi"]
step = st.one_of(
    st.tuples(st.just("credit"), st.integers(1, 120_000)),
    st.tuples(st.just("plan"), st.sampled_from(PLANS)),
    st.tuples(st.just("plan-after-price-change"), st.sampled_from(PLANS), st.integers(0, 120_000)),
    st.tuples(st.just("pay"), st.just(0)),
    st.tuples(st.just("cancel-order"), st.just(0)),
    st.tuples(st.just("cancel-at-end"), st.booleans()),
    st.tuples(st.just("period-end"), st.just(0)),
)


def _confirm(by: Any, org: Organization, plan: str, price: int | None) -> None:
    try:
        quote = quotes.save(quotes.for_plan_change(by=by, org=org, plan_code=plan))
    except quotes.NoChange:
        return
    except checkout.ConflictError:
        return  # an order already awaits payment
    if price is not None:  # the operator changes the price while the customer reads the quote
        pricing.set_price(
            by=None,
            plan=Plan.objects.get(code=plan),
            amount_minor=price,
            effective_from=timezone.now(),
        )
    try:
        checkout.confirm_quote(by=by, quote_id=quote.pk)
    except checkout.QuoteChanged as changed:
        assert price is not None, "nothing changed, yet the quote was refused"
        checkout.confirm_quote(by=by, quote_id=changed.fresh.pk)


def _apply(cast: dict[str, Any], action: tuple[Any, ...]) -> None:
    org = Organization.objects.get(slug="acme")
    owner = cast["owner"]
    awaiting = (
        Order.objects.filter(organization=org, status="awaiting_payment").order_by("pk").first()
    )
    sub = quotes.live_subscription(org)
    kind = action[0]
    if kind == "credit":
        ledger.append(org=org, amount_minor=action[1], reason="test")
    elif kind == "plan":
        _confirm(owner, org, action[1], None)
    elif kind == "plan-after-price-change":
        _confirm(owner, org, action[1], action[2])
    elif kind == "pay" and awaiting:
        checkout.record_payment(by=cast["sovereign_operator"], order=awaiting, reference="BANK")
    elif kind == "cancel-order" and awaiting:
        checkout.cancel_order(by=owner, order=awaiting, reason="test")
    elif kind == "cancel-at-end" and sub:
        subscriptions.set_cancel_at_period_end(by=owner, org=org, cancel=action[1])
    elif kind == "period-end" and sub:
        subscriptions.advance(sub_id=sub.pk, now=sub.period_end + timedelta(seconds=1))


def _check(org: Organization) -> None:
    orders = list(Order.objects.filter(organization=org).select_related("quote", "invoice"))
    entries = Counter()
    for reference, amount in LedgerEntry.objects.filter(organization=org).values_list(
        "reference", "amount_minor"
    ):
        entries[reference] += amount
    for order in orders:
        q = order.quote
        # the order is exactly the quote the customer saw
        assert (order.lines, order.total_minor) == (q.lines, q.total_minor)
        assert (order.credit_applied_minor, order.due_minor) == (
            q.credit_applied_minor,
            q.due_now_minor,
        )
        assert order.total_minor == order.credit_applied_minor + order.due_minor
        spent = -entries[f"order:{order.pk}"]
        if order.status == "paid":
            assert spent == order.total_minor
            if order.due_minor:
                assert entries[f"payment:{order.invoice.number}"] == order.due_minor
        elif order.status == "awaiting_payment":
            assert spent == order.credit_applied_minor
            assert order.invoice.total_minor == order.due_minor
        else:  # cancelled: what it held came back
            assert entries[f"order-cancel:{order.pk}"] == order.credit_applied_minor
    paid = [o for o in orders if o.status == "paid"]
    # money taken for orders, less credit given back and credit still only held
    charged = (
        sum(-entries[f"order:{o.pk}"] for o in orders)
        - sum(entries[f"order-cancel:{o.pk}"] for o in orders)
        - sum(o.credit_applied_minor for o in orders if o.status == "awaiting_payment")
    )
    assert charged == sum(o.quote.total_minor for o in paid)
    assert ledger.balance(org) >= 0
    # unpaid renewals may pile up (dunning chases them); other orders wait one at a time
    assert sum(o.status == "awaiting_payment" and o.kind != "renewal" for o in orders) <= 1
    live = list(Subscription.objects.filter(organization=org, status="active"))
    assert len(live) <= 1
    assert org.plan_code == (live[0].plan_code if live else org.plan_code if not paid else "")
    if live:
        sub = live[0]
        # the plan is the last paid order's (or an unpaid renewal's: the service goes on, and
        # dunning chases the invoice)
        effective = [
            o
            for o in orders
            if o.subscription_id == sub.pk
            and (o.status == "paid" or (o.kind == "renewal" and o.status == "awaiting_payment"))
        ]
        last = max(effective, key=lambda o: (o.paid_at or o.placed_at, o.pk))
        assert sub.plan_code == last.plan_code
        assert sub.plan_unit_minor == last.quote.recurring_lines[0]["unit_minor"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=14))
def test_ledger_orders_and_subscriptions_agree(cast, steps):
    with transaction.atomic():
        for action in steps:
            _apply(cast, action)
            _check(Organization.objects.get(slug="acme"))
        transaction.set_rollback(True)
