"""Typed requests for views: what the middleware guarantees, declared rather than attached."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated

from .models import Account


class AccountRequest(HttpRequest):
    """A request of a signed-in person (behind `login_required`)."""

    user: Account


class PortalRequest(HttpRequest):
    """Any request: the signed-in Account, or anonymous."""

    user: Account | AnonymousUser


def account_of(request: Any) -> Account:
    """The signed-in Account of a request (an API view behind IsAuthenticated)."""
    user = request.user
    if not isinstance(user, Account):
        raise NotAuthenticated()
    return user
