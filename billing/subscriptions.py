"""A subscription's life between plan changes: cancel or reactivate, and moving to the next period.

`advance` is what runs at the end of a period (`advance_due` for all of them, from the periodic
billing task): a subscription set to cancel ends (the Organization has no plan any more), otherwise
a pending downgrade takes effect and the next period is ordered from a renewal quote — paid from
credit when it covers it, else invoiced (and then chased by dunning).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core import audit
from core.actors import Actor
from core.errors import ConflictError
from orgs.models import Organization

from . import checkout, ledger, quotes
from .models import (
    Order,
    OrderStatus,
    QuoteKind,
    QuoteStatus,
    Subscription,
    SubscriptionStatus,
)
from .pricing import PriceBook


def _live_or_conflict(org: Organization) -> Subscription:
    sub = (
        Subscription.objects.select_for_update()
        .filter(organization=org, status=SubscriptionStatus.ACTIVE)
        .first()
    )
    if sub is None:
        raise ConflictError({"subscription": f"{org.display_name} has no subscription."})
    return sub


def set_cancel_at_period_end(*, by: Actor, org: Organization, cancel: bool) -> Subscription:
    """Cancel at the end of the period (the plan runs until then), or take that back."""
    with transaction.atomic():
        sub = _live_or_conflict(org)
        if sub.cancel_at_period_end == cancel:
            return sub
        sub.cancel_at_period_end = cancel
        fields = ["cancel_at_period_end"]
        if cancel and sub.pending_plan_code:
            sub.pending_plan_code = ""  # cancelling supersedes a scheduled downgrade
            fields.append("pending_plan_code")
        sub.save(update_fields=fields)
        audit.record(
            "billing.subscription.cancel" if cancel else "billing.subscription.reactivate",
            actor=by,
            target=sub,
            org_slug=org.slug,
            before={"cancel_at_period_end": not cancel},
            after={"cancel_at_period_end": cancel, "period_end": sub.period_end.isoformat()},
        )
        checkout.subscription_changed(sub, "cancel" if cancel else "reactivate")
    return sub


def keep_current_plan(*, by: Actor, org: Organization) -> Subscription:
    """Drop a downgrade scheduled for the end of the period."""
    with transaction.atomic():
        sub = _live_or_conflict(org)
        if sub.pending_plan_code:
            before = {"pending_plan_code": sub.pending_plan_code}
            sub.pending_plan_code = ""
            sub.save(update_fields=["pending_plan_code"])
            audit.record(
                "billing.subscription.keep",
                actor=by,
                target=sub,
                org_slug=org.slug,
                before=before,
                after={"pending_plan_code": ""},
            )
            checkout.subscription_changed(sub, "keep")
    return sub


def advance(*, sub_id: int, now: datetime | None = None) -> Order | None:
    """End or renew one subscription whose period is over; safe to run twice."""
    now = now or timezone.now()
    with transaction.atomic():
        sub = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("organization")
            .filter(pk=sub_id, status=SubscriptionStatus.ACTIVE, period_end__lte=now)
            .first()
        )
        if sub is None:
            return None
        org = Organization.objects.select_for_update().get(pk=sub.organization_id)
        _drop_stale_upgrades(sub)
        if sub.cancel_at_period_end:
            sub.status, sub.ended_at = SubscriptionStatus.ENDED, sub.period_end
            sub.save(update_fields=["status", "ended_at"])
            audit.record(
                "billing.subscription.end", actor=None, target=sub, org_slug=org.slug, after={}
            )
            checkout.subscription_changed(sub, "end")
            checkout.set_org_plan(org, plan_code="", by=None)
            return None
        return _renew(sub, org)


def _drop_stale_upgrades(sub: Subscription) -> None:
    """An upgrade still unpaid when its period ends was prorated for a period that is over: it
    is cancelled (its held credit comes back) rather than charged for time that has passed."""
    stale = Order.objects.filter(
        subscription=sub, kind=QuoteKind.UPGRADE, status=OrderStatus.AWAITING_PAYMENT
    )
    for order in stale:
        checkout.cancel_order(by=None, order=order, reason="upgrade unpaid when its period ended")


def _renew(sub: Subscription, org: Organization) -> Order:
    plan_code = sub.pending_plan_code or sub.plan_code
    book = PriceBook()
    lines = quotes.recurring_lines(book, plan_code, sub.addons, org)
    start, end = sub.period_end, quotes.add_month(sub.period_end)
    quote = quotes.build(
        kind=QuoteKind.RENEWAL,
        book=book,
        plan_code=plan_code,
        lines=lines,
        recurring=lines,
        credit_minor=ledger.balance(org),
        period=(start, end),
        org=org,
        inputs={"plan": plan_code, "addons": sub.addons},
        by=None,
    )
    quote.status = QuoteStatus.CONFIRMED  # the terms the customer agreed to renew on
    quotes.save(quote)
    before = {"plan_code": sub.plan_code, "period_end": sub.period_end.isoformat()}
    sub.plan_code, sub.pending_plan_code = plan_code, ""
    sub.plan_unit_minor = lines[0].unit_minor
    sub.recurring_minor = sum(line.amount_minor for line in lines)
    sub.period_start, sub.period_end = start, end
    sub.save(
        update_fields=[
            "plan_code",
            "pending_plan_code",
            "plan_unit_minor",
            "recurring_minor",
            "period_start",
            "period_end",
        ]
    )
    checkout.subscription_changed(sub, "renew")
    audit.record(
        "billing.subscription.renew",
        actor=None,
        target=sub,
        org_slug=org.slug,
        before=before,
        after={"plan_code": plan_code, "period_end": end.isoformat()},
    )
    if org.plan_code != plan_code:
        checkout.set_org_plan(org, plan_code=plan_code, by=None)
    return checkout.place(quote, org=org, by=None, sub=sub)


def advance_due(now: datetime | None = None) -> int:
    """Advance every subscription whose period ended; returns how many were ended or renewed."""
    now = now or timezone.now()
    due = Subscription.objects.filter(status=SubscriptionStatus.ACTIVE, period_end__lte=now)
    count = 0
    for sub_id in list(due.values_list("pk", flat=True)):
        while due.filter(pk=sub_id).exists():  # a long gap renews period by period
            advance(sub_id=sub_id, now=now)
            count += 1
    return count
