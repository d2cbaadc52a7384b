"""The monthly price of Applications by size and topology, read from billing's price book
(`billing.extras.application_quote`: the extras a subscription charges for them; marketplace reads
billing's pricing, never the reverse). A small single-region Application is included in every plan."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from billing import extras
from billing.money import format_money


@dataclass(frozen=True)
class Line:
    label: str
    quantity: int
    amount: str


@dataclass(frozen=True)
class MonthlyPrice:
    """What the page shows: lines, subtotal, tax and total, or why there is no price."""

    lines: list[Line] = field(default_factory=list)
    subtotal: str = ""
    tax: str = ""
    total: str = ""
    total_minor: int = 0
    currency: str = ""
    problem: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": [vars(line) for line in self.lines],
            "subtotal": self.subtotal,
            "tax": self.tax,
            "total": self.total,
            "total_minor": self.total_minor,
            "currency": self.currency,
            "problem": self.problem,
        }


def monthly(units: Iterable[tuple[str, str, str, int]]) -> MonthlyPrice:
    """Price (name, size, placement, number of regions) tuples."""
    try:
        quote = extras.application_quote([extras.AppUsage(*unit) for unit in units])
    except ValidationError as exc:
        return MonthlyPrice(problem=" ".join(exc.messages))
    money = quote.currency
    return MonthlyPrice(
        lines=[
            Line(li.name, li.quantity, format_money(li.amount_minor, money)) for li in quote.lines
        ],
        subtotal=format_money(quote.subtotal_minor, money),
        tax=format_money(quote.tax_minor, money),
        total=format_money(quote.total_minor, money),
        total_minor=quote.total_minor,
        currency=money,
    )
