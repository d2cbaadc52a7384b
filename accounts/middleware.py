"""Session middleware of the accounts app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import middleware as auth_middleware
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from .oidc import GROUPS_SESSION_KEY


class OIDCGroupsMiddleware:
    """Expose the OIDC groups of this session as `request.user.oidc_groups` (read by RBAC).

    The groups live in the session, written at sign-in, so this costs no query. Must come after
    AuthenticationMiddleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.user = SimpleLazyObject(lambda: _user_with_groups(request))  # type: ignore[assignment]
        return self.get_response(request)


def _user_with_groups(request: HttpRequest) -> Any:
    user = auth_middleware.get_user(request)
    if user.is_authenticated and not hasattr(user, "oidc_groups"):
        user.oidc_groups = list(request.session.get(GROUPS_SESSION_KEY, []))  # type: ignore[attr-defined]
    return user
