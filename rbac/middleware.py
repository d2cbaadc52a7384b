"""Expose the OIDC groups of a signed-in user to `rbac.access` (group subjects of grants)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

GROUPS_SESSION_KEY = "oidc_groups"


def remember_groups(request: HttpRequest, groups: list[str]) -> None:
    """Called by the OIDC backend at sign-in with the groups claim (OIDC_GROUPS_CLAIM)."""
    request.session[GROUPS_SESSION_KEY] = sorted({str(g) for g in groups})


def oidc_groups_middleware(get_response: Callable[[HttpRequest], Any]) -> Callable[..., Any]:
    def middleware(request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        groups = session.get(GROUPS_SESSION_KEY) if session is not None else None
        if groups:  # local accounts carry none: request.user stays lazy for them
            request.user.oidc_groups = list(groups)  # type: ignore[union-attr]
        response: HttpResponse = get_response(request)
        return response

    return middleware
