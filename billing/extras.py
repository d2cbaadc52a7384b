"""Priced Application extras: what an Organization runs beyond its plan (size, hot standby).

billing does not import marketplace (the dependency points the other way): marketplace registers
a usage source at start-up (`register`), and a quote asks every source for the Organization's
Applications. Each extra is an add-on of kind `app_extra` in the price book: `app-medium` and
`app-large` per Application of that size, `app-hotstandby` per standby region.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from django.core.exceptions import ValidationError

from orgs.models import Organization

from .money import lines_tax
from .pricing import PriceBook, Quote, QuoteLine

SIZE_EXTRAS = {"medium": "app-medium", "large": "app-large"}  # small is included in every plan
HOT_STANDBY_EXTRA = "app-hotstandby"
HOT_STANDBY = "active-hotstandby"
ACTIVE_ACTIVE = "active-active"
TOPOLOGIES = ("single-region", ACTIVE_ACTIVE, HOT_STANDBY)


@dataclass(frozen=True)
class AppUsage:
    name: str  # <environment>/<application>
    size: str
    placement: str
    regions: int


UsageSource = Callable[[Organization], list[AppUsage]]
_sources: list[UsageSource] = []


def register(source: UsageSource) -> UsageSource:
    if source not in _sources:
        _sources.append(source)
    return source


def usage(org: Organization) -> list[AppUsage]:
    return [app for source in _sources for app in source(org)]


def app_extra_counts(app: AppUsage) -> Counter[str]:
    """The extras one Application uses: its size in every active region (active-active runs all of
    them), and each hot-standby region."""
    counts: Counter[str] = Counter()
    active = app.regions if app.placement == ACTIVE_ACTIVE else 1
    if app.size in SIZE_EXTRAS:
        counts[SIZE_EXTRAS[app.size]] += max(active, 1)
    if app.placement == HOT_STANDBY and app.regions > 1:
        counts[HOT_STANDBY_EXTRA] += app.regions - 1
    return counts


def extra_counts(apps: list[AppUsage]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for app in apps:
        counts.update(app_extra_counts(app))
    return counts


def application_quote(apps: list[AppUsage], *, at: datetime | None = None) -> Quote:
    """What these Applications add to the monthly bill, line by line per Application — the same
    extras a subscription charges (read by the marketplace: Blueprint page, install preview).
    A ValidationError (`price`, `placement`) when it cannot be priced."""
    book = PriceBook(at)
    result = Quote(plan_code="", currency=book.currency, tax_rate_bp=book.tax_rate_bp)
    for app in apps:
        if app.placement not in TOPOLOGIES or app.regions < 1:
            raise ValidationError({"placement": f"Cannot price {app.placement} on {app.regions}."})
        for code, quantity in sorted(app_extra_counts(app).items()):
            try:
                line = book.addon_line(code, quantity, kind="app_extra")
            except ValidationError as exc:
                raise ValidationError(
                    {"price": f"The price book has no price for “{code}” in {book.currency}."}
                ) from exc
            result.lines.append(replace(line, name=f"{app.name}: {line.name}"))
    result.subtotal_minor = sum(line.amount_minor for line in result.lines)
    result.tax_minor = lines_tax([line.amount_minor for line in result.lines], book.tax_rate_bp)
    result.total_minor = result.subtotal_minor + result.tax_minor
    return result


def extra_lines(org: Organization | None, book: PriceBook) -> list[QuoteLine]:
    """One line per kind of extra the Organization's Applications use, priced by `book`."""
    if org is None or org.pk is None:
        return []
    counts = extra_counts(usage(org))
    return [
        book.addon_line(code, quantity, kind="app_extra")
        for code, quantity in sorted(counts.items())
    ]
