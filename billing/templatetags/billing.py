from __future__ import annotations

from django import template

from billing.money import format_money

register = template.Library()


@register.filter
def money(minor: int | None, currency: str = "OMR") -> str:
    return "" if minor is None else format_money(minor, currency)
