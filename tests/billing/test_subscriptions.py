"""Subscriptions: upgrade now with proration, downgrade at the end of the period, cancel and
reactivate, renewals, and the priced Application extras in every period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import extras, ledger, quotes, subscriptions
from billing.models import Order, Quote, Subscription
from billing.money import format_money
from core.models import AuditEvent
from orgs.models import Organization
from tests.billing.helpers import order_plan, quote_form, through_quote

pytestmark = pytest.mark.django_db


def on_plan(cast, plan: str, credit: int) -> Subscription:
    ledger.append(org=cast["acme"], amount_minor=credit, reason="test")
    order_plan(by=cast["owner"], org=cast["acme"], plan_code=plan)
    return Subscription.objects.get(organization=cast["acme"], status="active")


def move_period(sub: Subscription, *, start_days_ago: int, length_days: int = 30) -> Subscription:
    start = timezone.now() - timedelta(days=start_days_ago)
    Subscription.objects.filter(pk=sub.pk).update(
        period_start=start, period_end=start + timedelta(days=length_days)
    )
    sub.refresh_from_db()
    return sub


def test_upgrade_now_is_prorated_and_takes_effect_when_paid(cast, client_for):
    sub = move_period(on_plan(cast, "s", 100_000), start_days_ago=10)  # 20 of 30 days left
    client = client_for(cast["owner"])
    response = client.post("/billing/acme/plan/", {"plan": "l"})
    page = client.get(response["Location"]).content.decode()
    quote = Quote.objects.latest("pk")
    assert quote.kind == "upgrade" and quote.due_now_minor == 0  # credit covers it
    # S 15.000 → L 55.000 with (about) 2/3 of the period left, to the second
    whole = (sub.period_end - sub.period_start).total_seconds()
    left = (sub.period_end - quote.created_at).total_seconds()
    unused, remaining = round(15_000 * left / whole), round(55_000 * left / whole)
    assert abs(unused - 10_000) <= 1 and abs(remaining - 36_667) <= 1
    subtotal = remaining - unused
    total = subtotal + (subtotal * 500 + 5000) // 10000
    assert [line["amount_minor"] for line in quote.lines] == [-unused, remaining]
    assert quote.total_minor == total
    assert "Unused time on S (20 days left)" in page and "L for the rest of the period" in page
    for minor in (-unused, remaining, subtotal, total):
        assert format_money(minor, "OMR") in page
    assert "OMR 57.750" in page  # due each month from then on
    before = ledger.balance(cast["acme"])
    action, token = quote_form(client.get(response["Location"]))
    assert client.post(action, {"quote": token}).status_code == 302
    sub.refresh_from_db()
    assert sub.plan_code == "l" and sub.plan_unit_minor == 55_000
    assert sub.period_end == quote.period_end  # the period does not move
    assert ledger.balance(cast["acme"]) == before - total
    assert Organization.objects.get(slug="acme").plan_code == "l"
    order = Order.objects.get(kind="upgrade")
    assert order.total_minor == total and order.subscription == sub


def test_an_unpaid_upgrade_leaves_the_plan_alone(cast, client_for, operator_client):
    sub = on_plan(cast, "s", 15_750)  # nothing left after S
    client = client_for(cast["owner"])
    through_quote(client, client.post("/billing/acme/plan/", {"plan": "m"}))
    order = Order.objects.get(kind="upgrade")
    assert order.status == "awaiting_payment" and order.due_minor > 0
    sub.refresh_from_db()
    assert sub.plan_code == "s" and Organization.objects.get(slug="acme").plan_code == "s"
    operator_client.post(f"/bss/orders/{order.pk}/pay/", {"reference": "BANK-9"})
    sub.refresh_from_db()
    assert sub.plan_code == "m" and Organization.objects.get(slug="acme").plan_code == "m"


def test_downgrade_waits_for_the_end_of_the_period(cast, client_for, on_commit):
    sub = on_plan(cast, "l", 200_000)
    client = client_for(cast["owner"])
    balance = ledger.balance(cast["acme"])
    response = client.post("/billing/acme/plan/", {"plan": "s"})
    page = client.get(response["Location"]).content.decode()
    assert "Nothing is charged now" in page and "OMR 15.750" in page
    action, token = quote_form(client.get(response["Location"]))
    done = client.post(action, {"quote": token})
    assert done.status_code == 302
    sub.refresh_from_db()
    assert sub.plan_code == "l" and sub.pending_plan_code == "s"
    assert (
        ledger.balance(cast["acme"]) == balance
        and Organization.objects.get(slug="acme").plan_code == "l"
    )
    assert "Changes to plan S" in client.get("/billing/acme/").content.decode()
    # at the end of the period the renewal is for S
    with on_commit():
        renewal = subscriptions.advance(sub_id=sub.pk, now=sub.period_end + timedelta(seconds=1))
    assert renewal is not None and renewal.kind == "renewal" and renewal.total_minor == 15_750
    assert renewal.status == "paid" and renewal.period_start == sub.period_end
    sub.refresh_from_db()
    assert (
        sub.plan_code == "s"
        and sub.pending_plan_code == ""
        and Organization.objects.get(slug="acme").plan_code == "s"
    )
    # running it again does nothing
    assert (
        subscriptions.advance(sub_id=sub.pk, now=renewal.period_start + timedelta(seconds=1))
        is None
    )


def test_keep_current_plan_drops_a_scheduled_downgrade(cast, client_for):
    sub = on_plan(cast, "l", 200_000)
    client = client_for(cast["owner"])
    through_quote(client, client.post("/billing/acme/plan/", {"plan": "m"}))
    assert Subscription.objects.get(pk=sub.pk).pending_plan_code == "m"
    assert client_for(cast["viewer"]).post("/billing/acme/subscription/keep/").status_code == 403
    client.post("/billing/acme/subscription/keep/")
    assert Subscription.objects.get(pk=sub.pk).pending_plan_code == ""


def test_cancel_at_period_end_and_reactivate(cast, client_for, on_commit):
    sub = on_plan(cast, "m", 100_000)
    client = client_for(cast["owner"])
    assert client_for(cast["viewer"]).post("/billing/acme/subscription/cancel/").status_code == 403
    response = client.post("/billing/acme/subscription/cancel/")
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.cancel_at_period_end and "Ends on" in client.get("/billing/acme/").content.decode()
    client.post("/billing/acme/subscription/reactivate/")
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end
    client.post("/billing/acme/subscription/cancel/")
    balance = ledger.balance(cast["acme"])
    with on_commit():
        assert subscriptions.advance_due(now=sub.period_end + timedelta(seconds=1)) == 1
    sub.refresh_from_db()
    assert sub.status == "ended" and ledger.balance(cast["acme"]) == balance
    assert Organization.objects.get(slug="acme").plan_code == ""
    actions = set(AuditEvent.objects.filter(org_slug="acme").values_list("action", flat=True))
    assert {
        "billing.subscription.cancel",
        "billing.subscription.reactivate",
        "billing.subscription.end",
    } <= actions


def test_renewal_without_enough_credit_is_invoiced(cast):
    sub = on_plan(cast, "s", 15_750 + 5_000)
    renewal = subscriptions.advance(sub_id=sub.pk, now=sub.period_end)
    assert renewal.credit_applied_minor == 5_000 and renewal.due_minor == 10_750
    assert renewal.status == "awaiting_payment" and renewal.invoice.total_minor == 10_750
    assert ledger.balance(cast["acme"]) == 0


def test_application_extras_are_priced_in_every_period(cast, monkeypatch):
    apps = [
        extras.AppUsage("acme-prod/shop", "large", "active-hotstandby", 2),
        extras.AppUsage("acme-prod/db", "medium", "single-region", 1),
        extras.AppUsage("acme-dev/try", "small", "single-region", 1),
    ]
    monkeypatch.setattr(extras, "_sources", [lambda org: apps if org.slug == "acme" else []])
    quote = quotes.for_plan_change(by=cast["owner"], org=cast["acme"], plan_code="s")
    codes = {line["code"]: (line["quantity"], line["amount_minor"]) for line in quote.lines}
    assert codes == {
        "s": (1, 15_000),
        "app-large": (1, 9_000),
        "app-medium": (1, 4_000),
        "app-hotstandby": (1, 6_000),
    }
    assert quote.subtotal_minor == 34_000 and quote.recurring_minor == 35_700
    # globex has no Applications: its quote has the plan only
    other = quotes.for_plan_change(by=cast["member_b"], org=cast["globex"], plan_code="s")
    assert [line["code"] for line in other.lines] == ["s"]


def test_cancelling_an_unpaid_renewal_ends_the_subscription(cast, client_for, on_commit):
    """Found by the property test: a downgrade took effect at renewal, the customer cancelled the
    unpaid renewal, and the subscription stayed on the new plan that nobody had paid for."""
    sub = on_plan(cast, "l", 57_750)  # nothing left for the renewal
    client = client_for(cast["owner"])
    through_quote(client, client.post("/billing/acme/plan/", {"plan": "s"}))
    ledger.append(org=cast["acme"], amount_minor=4_000, reason="test")
    with on_commit():
        renewal = subscriptions.advance(sub_id=sub.pk, now=sub.period_end + timedelta(seconds=1))
    assert renewal.status == "awaiting_payment" and renewal.credit_applied_minor == 4_000
    assert Subscription.objects.get(pk=sub.pk).plan_code == "s"
    url = f"/billing/acme/orders/{renewal.pk}/cancel/"
    assert client_for(cast["viewer"]).post(url).status_code == 403
    assert Order.objects.get(pk=renewal.pk).status == "awaiting_payment"
    with on_commit():
        assert client.post(url).status_code == 302
    renewal.refresh_from_db()
    sub.refresh_from_db()
    assert renewal.status == "cancelled" and renewal.invoice.status == "void"
    assert sub.status == "ended" and sub.ended_at is not None
    assert Organization.objects.get(slug="acme").plan_code == ""
    assert ledger.balance(cast["acme"]) == 4_000  # the credit it held came back
    ended = AuditEvent.objects.get(org_slug="acme", action="billing.subscription.end")
    assert ended.actor == cast["owner"] and ended.after["order"] == renewal.pk
