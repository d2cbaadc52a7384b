from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from rbac import access

# (label, URL name, who sees it): "user" = any signed-in user, "operator" = Sovereign operators.
NAV = [
    ("Organizations", "orgs:list", "user"),
    ("Marketplace", "marketplace:catalog", "user"),
    ("BSS", "billing:index", "operator"),
    ("Catalog curation", "marketplace:curation", "operator"),
    ("Audit", "audit", "operator"),
    ("API tokens", "token-list", "user"),
    ("Account", "account", "user"),
]


def _nav(path: str, *, signed_in: bool, operator: bool) -> list[dict[str, Any]]:
    if not signed_in:
        return []
    items = []
    for label, name, who in NAV:
        if who == "operator" and not operator:
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:  # an app whose pages are not installed
            continue
        items.append({"label": label, "url": url, "current": path.startswith(url)})
    return items


def portal(request: HttpRequest) -> dict[str, Any]:
    from orgs.models import Sovereign

    sovereign = Sovereign.objects.order_by("pk").values_list("fqdn", flat=True).first()
    user = getattr(request, "user", None)
    signed_in = bool(getattr(user, "is_authenticated", False))
    operator = signed_in and access.is_operator(user, "audit.read")
    return {
        "sovereign_name": sovereign or "Catalyst",
        "nav_is_operator": operator,
        "nav": _nav(request.path, signed_in=signed_in, operator=operator),
        "local_signup_enabled": settings.LOCAL_SIGNUP_ENABLED,
    }
