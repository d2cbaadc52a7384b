"""Priced Application extras: what an Organization runs beyond its plan (size, hot standby).

billing does not import marketplace (the dependency points the other way): marketplace registers
a usage source at start-up (`register`), and a quote asks every source for the Organization's
Applications. Each extra is an add-on of kind `app_extra` in the price book: `app-medium` and
`app-large` per Application of that size, `app-hotstandby` per standby region.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from orgs.models import Organization

from .pricing import PriceBook, QuoteLine

SIZE_EXTRAS = {"medium": "app-medium", "large": "app-large"}
HOT_STANDBY_EXTRA = "app-hotstandby"
HOT_STANDBY = "active-hotstandby"


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


def extra_counts(apps: list[AppUsage]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for app in apps:
        if app.size in SIZE_EXTRAS:
            counts[SIZE_EXTRAS[app.size]] += 1
        if app.placement == HOT_STANDBY and app.regions > 1:
            counts[HOT_STANDBY_EXTRA] += app.regions - 1
    return counts


def extra_lines(org: Organization | None, book: PriceBook) -> list[QuoteLine]:
    """One line per kind of extra the Organization's Applications use, priced by `book`."""
    if org is None or org.pk is None:
        return []
    counts = extra_counts(usage(org))
    return [
        book.addon_line(code, quantity, kind="app_extra")
        for code, quantity in sorted(counts.items())
    ]
