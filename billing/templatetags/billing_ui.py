"""Plan and credit on pages other apps render (the Organization overview)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from orgs.models import Organization
from rbac import access

from .. import ledger, quotes
from ..models import Price

register = template.Library()


@register.simple_tag(takes_context=True)
def billing_summary(context: dict[str, Any], org: Organization) -> dict[str, Any] | None:
    """{% billing_summary org as billing %}: plan, credit balance and currency, or None when the
    user may not read this Organization's billing."""
    if not access.can(context["request"].user, "billing.read", org):
        return None
    sub = quotes.live_subscription(org)
    return {
        "plan_code": sub.plan_code if sub else org.plan_code,
        "subscription": sub,
        "balance": ledger.balance(org),
        "currency": ledger.currency(),
    }


@register.simple_tag
def scheduled_prices(plan: Any = None, addon: Any = None) -> list[Price]:
    """{% scheduled_prices plan as upcoming %}: the prices that take effect later, soonest first."""
    owner = {"plan": plan} if plan is not None else {"addon": addon}
    return list(
        Price.objects.filter(**owner, effective_from__gt=timezone.now()).order_by("effective_from")
    )
