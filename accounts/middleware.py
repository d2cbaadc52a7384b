"""The accounts app's session middleware (after AuthenticationMiddleware)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.functional import SimpleLazyObject

from . import sessions


class AccountSessionMiddleware:
    """Ends sessions past their lifetime or refused at re-validation (`accounts.sessions`), and
    makes `request.user` and `await request.auser()` the same Account with this session's SSO
    groups: pages, the API and the SSE streams all authorize with the same groups.

    A browser navigating when its session just ended is sent to sign in again (through a silent
    re-authentication when single sign-on can renew it), with a message; other requests go on
    anonymous and get the usual 401/403/redirect.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        outcome = sessions.check(request)
        if outcome is not sessions.Outcome.LIVE and _is_navigation(request):
            if outcome is sessions.Outcome.REAUTHENTICATE:
                return HttpResponseRedirect(sessions.reauthenticate_url(request))
            messages.info(request, sessions.end_message(outcome))
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{resolve_url(settings.LOGIN_URL)}?{query}")
        current = _CurrentAccount(request)
        request.user = SimpleLazyObject(current.get)  # type: ignore[assignment]
        request.auser = current.aget
        return self.get_response(request)


class _CurrentAccount:
    """Loads the request's Account once, for sync and async callers alike."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.user: Any = None

    def get(self) -> Any:
        if self.user is None:
            self.user = sessions.account(self.request)
        return self.user

    async def aget(self) -> Any:
        if self.user is None:
            await sync_to_async(self.get)()
        return self.user


def _is_navigation(request: HttpRequest) -> bool:
    return (
        request.method == "GET"
        and not request.headers.get("HX-Request")
        and request.accepts("text/html")
        and not request.path.startswith("/api/")
    )
