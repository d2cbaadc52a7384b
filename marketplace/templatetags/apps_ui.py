"""Applications on pages other apps render (the Organization and Environment homes).

`orgs` does not import `marketplace`; its templates load this library instead, so the dependency
stays pointing down in Python and the Organization pages still list what runs in them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django import template
from django.db.models import QuerySet

from orgs.models import Environment, Organization
from rbac import access

from ..models import Application, AppState

register = template.Library()

# the order states are summed up in: what needs attention first
STATE_ORDER = [
    AppState.FAILED,
    AppState.DEGRADED,
    AppState.RECONCILING,
    AppState.COMMITTING,
    AppState.PENDING,
    AppState.COMMITTED,
    AppState.UNINSTALLING,
    AppState.READY,
]


@register.simple_tag(takes_context=True)
def applications_in(
    context: dict[str, Any], place: Organization | Environment
) -> list[Application]:
    """{% applications_in env as apps %}: the Applications the user may read there (one query)."""
    qs: QuerySet[Application] = Application.objects.select_related(
        "blueprint_version__blueprint", "environment"
    )
    if isinstance(place, Environment):
        qs = qs.filter(environment=place)
    else:
        qs = qs.filter(environment__organization=place)
    qs = access.visible(context["request"].user, qs, "applications.read")
    return list(qs.order_by("environment__name", "name"))


@register.filter
def by_state(apps: list[Application]) -> list[dict[str, Any]]:
    """[{state, count, text}] in attention order: `2 committed · 1 failed`."""
    counts = Counter(a.state for a in apps)
    return [
        {"state": s.value, "count": counts[s.value], "text": f"{counts[s.value]} {s.label.lower()}"}
        for s in STATE_ORDER
        if counts[s.value]
    ]


@register.simple_tag(takes_context=True)
def may_install(context: dict[str, Any], env: Environment) -> bool:
    org = env.organization
    return org.is_writable and access.can(context["request"].user, "applications.install", env)
