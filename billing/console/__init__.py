"""Console → BSS: operator pages for vouchers, the price book, orders and customers.

Every page answers 404 to anyone without the matching global grant (Sovereign operators).
"""

from __future__ import annotations

from django.http import Http404, HttpRequest

from rbac import access


def require(request: HttpRequest, action: str) -> None:
    if not access.is_global(request.user, action):
        raise Http404
