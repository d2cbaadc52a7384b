"""What billing prices from the marketplace: each Application's size and placement.

billing reads this through the source registered here (billing must not import marketplace).
"""

from __future__ import annotations

from billing import extras
from orgs.models import Organization

from .models import Application, AppState


@extras.register
def application_usage(org: Organization) -> list[extras.AppUsage]:
    rows = (
        Application.objects.in_org(org.slug)
        .exclude(state=AppState.UNINSTALLING)
        .order_by("environment__name", "name")
        .values_list("environment__name", "name", "size", "placement", "regions")
    )
    return [
        extras.AppUsage(f"{env}/{name}", size, placement, len(regions or []))
        for env, name, size, placement, regions in rows
    ]
