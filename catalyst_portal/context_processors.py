from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from rbac import access


def portal(request: HttpRequest) -> dict[str, Any]:
    from orgs.models import Sovereign

    sovereign = Sovereign.objects.order_by("pk").values_list("fqdn", flat=True).first()
    user = getattr(request, "user", None)
    return {
        "sovereign_name": sovereign or "Catalyst",
        "nav_is_operator": bool(user and access.is_operator(user, "audit.read")),
        "nav_extra": [{"url": "/bss/", "label": "BSS"}]
        if user and access.is_operator(user, "vouchers.read")
        else [],
    }
