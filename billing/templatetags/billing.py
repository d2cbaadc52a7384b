from __future__ import annotations

from django import template

from billing.money import format_money

register = template.Library()


@register.filter
def money(minor: int | None, currency: str = "OMR") -> str:
    return "" if minor is None else format_money(minor, currency)


@register.filter
def percent_bp(basis_points: int) -> str:
    """500 → `5 %`, 525 → `5.25 %` (basis points, integers only)."""
    whole, part = divmod(int(basis_points), 100)
    return f"{whole} %" if not part else f"{whole}.{part:02d}".rstrip("0") + " %"


@register.filter
def negate(minor: int) -> int:
    return -int(minor)
