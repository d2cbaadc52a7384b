"""Console → BSS: operator pages for vouchers, the price book, orders and customers.

Every page answers 404 to anyone without the matching global grant (Sovereign operators).
"""

from __future__ import annotations

from django.http import HttpRequest

from rbac import access


def require(request: HttpRequest, action: str) -> None:
    """Operators only (admin or owner tier with a global scope); 404 for everyone else."""
    access.require_global(request.user, action)
