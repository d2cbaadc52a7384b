"""Single sign-on through OpenID Connect (mozilla-django-oidc), configured by discovery.

The issuer's endpoints come from `<OIDC_ISSUER>/.well-known/openid-configuration`, read on first
use and cached per process; nothing talks to the issuer at start-up or during a local sign-in. A
sign-in's start reads the document afresh, so a provider that went away meanwhile gets the portal's
own "single sign-on is unavailable" page instead of a browser error. Who the claims make the user
is decided by `accounts.identities` (matched by issuer and subject); the session keeps the groups,
the ID token (for RP-initiated logout) and the refresh token (for re-validation, see
`accounts.sessions`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from . import identities
from .models import Account, SsoSession

logger = logging.getLogger(__name__)

DISCOVERY_TTL_SECONDS = 3600


class DiscoveryError(ImproperlyConfigured):
    """The issuer's discovery document could not be read or is unusable."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    end_session_endpoint: str = ""


_REQUIRED = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
_cache: dict[str, tuple[float, Provider]] = {}
_cache_lock = threading.Lock()


def provider(*, fresh: bool = False) -> Provider:
    """The configured issuer's endpoints, from its discovery document (cached for an hour;
    `fresh` reads it again, which also proves the provider answers)."""
    issuer = settings.OIDC_ISSUER.rstrip("/")
    if not issuer:
        raise DiscoveryError("OIDC_ISSUER is not set: single sign-on is switched off.")
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(issuer)
        if cached and cached[0] > now and not fresh:
            return cached[1]
    found = discover(issuer)
    with _cache_lock:
        _cache[issuer] = (now + DISCOVERY_TTL_SECONDS, found)
    return found


def forget_discovery() -> None:
    with _cache_lock:
        _cache.clear()


def discover(issuer: str) -> Provider:
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_DISCOVERY_TIMEOUT_SECONDS)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DiscoveryError(
            f"OIDC_ISSUER={issuer!r}: cannot read the discovery document {url} ({exc})."
        ) from exc
    if not isinstance(document, dict):
        raise DiscoveryError(f"OIDC_ISSUER={issuer!r}: {url} is not a JSON object.")
    missing = [key for key in _REQUIRED if not document.get(key)]
    if missing:
        raise DiscoveryError(
            f"OIDC_ISSUER={issuer!r}: the discovery document lacks {', '.join(missing)}."
        )
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise DiscoveryError(
            f"OIDC_ISSUER={issuer!r} does not match the issuer {document.get('issuer')!r} "
            "named by its discovery document."
        )
    return Provider(
        issuer=issuer,
        end_session_endpoint=str(document.get("end_session_endpoint") or ""),
        **{key: str(document[key]) for key in _REQUIRED},
    )


class PortalOIDCBackend(OIDCAuthenticationBackend):
    """Authorization code flow (PKCE + nonce) against the discovered issuer; claims → user."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django builds the backends for every local sign-in, so this must not call the issuer:
        # the endpoints are properties resolved by discovery when the flow needs them.
        self.UserModel = Account
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self._refresh_token = ""

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return provider().token_endpoint

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return provider().userinfo_endpoint

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:
        return provider().jwks_uri

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload: dict[str, Any] = super().verify_token(token, **kwargs)
        if str(payload.get("iss", "")).rstrip("/") != provider().issuer:
            raise SuspiciousOperation("The ID token was not issued by OIDC_ISSUER.")
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("The ID token is not meant for OIDC_CLIENT_ID.")
        return payload

    def get_token(self, payload: dict[str, Any]) -> Any:
        token_info = super().get_token(payload)
        self._refresh_token = str(token_info.get("refresh_token") or "")
        return token_info

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        userinfo = super().get_userinfo(access_token, id_token, payload)
        # Some issuers put the groups only in the ID token.
        if settings.OIDC_GROUPS_CLAIM not in userinfo and settings.OIDC_GROUPS_CLAIM in payload:
            userinfo = {**userinfo, settings.OIDC_GROUPS_CLAIM: payload[settings.OIDC_GROUPS_CLAIM]}
        return userinfo

    def get_or_create_user(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> Account | None:
        userinfo = self.get_userinfo(access_token, id_token, payload)
        subject = userinfo.get("sub")
        if not subject or subject != payload.get("sub"):
            logger.warning("OIDC sign-in refused: userinfo sub does not match the ID token")
            return None
        claims = identities.Claims.parse(provider().issuer, userinfo)
        user, identity = identities.sign_in(claims)
        if not user.is_active:
            logger.info("OIDC sign-in refused: the account is deactivated")
            return None
        user.oidc_groups = claims.groups
        user.sso = SsoSession(
            identity_id=identity.pk,
            groups=claims.groups,
            id_token=id_token,
            refresh_token=self._refresh_token,
        )
        return user


class PortalAuthenticationRequestView(OIDCAuthenticationRequestView):
    """/oidc/authenticate/: redirect to the issuer, or explain why single sign-on is down."""

    def __init__(self, **kwargs: Any) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ISSUER:
            raise Http404("Single sign-on is not configured.")
        try:  # afresh: a cached document would send the browser to a provider that is gone
            self.OIDC_OP_AUTH_ENDPOINT = provider(fresh=True).authorization_endpoint
        except DiscoveryError as exc:
            logger.error("single sign-on unavailable: %s", exc)
            return render(request, "accounts/sso_unavailable.html", status=503)
        response: HttpResponse = super().get(request)
        return response

    def get_extra_params(self, request: HttpRequest) -> dict[str, str]:
        """`?prompt=none`: silent re-authentication (the provider answers at once or with
        `login_required`), used when a session without a refresh token is due for re-validation."""
        return {"prompt": "none"} if request.GET.get("prompt") == "none" else {}


class PortalAuthenticationCallbackView(OIDCAuthenticationCallbackView):
    """/oidc/callback/: a failed sign-in lands on the login page with a message."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ISSUER:
            raise Http404("Single sign-on is not configured.")
        try:
            response: HttpResponse = super().get(request)
        except (DiscoveryError, requests.RequestException) as exc:
            logger.error("OIDC sign-in failed: %s", type(exc).__name__)
            return self.login_failure()
        return response

    def login_failure(self) -> HttpResponse:
        if self.request.GET.get("error") == "login_required":  # a silent re-authentication
            messages.info(self.request, "Your session ended. Please sign in again.")
        else:
            messages.error(self.request, "Single sign-on failed. Please try again.")
        return HttpResponseRedirect(resolve_url(settings.LOGIN_URL))


def end_session_url(request: HttpRequest, id_token: str) -> str:
    """RP-initiated logout at the issuer, or "" when it offers none (or is unreachable)."""
    try:
        endpoint = provider().end_session_endpoint
    except DiscoveryError:
        return ""
    if not endpoint:
        return ""
    query = urlencode(
        {
            "id_token_hint": id_token,
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "post_logout_redirect_uri": request.build_absolute_uri(
                resolve_url(settings.LOGOUT_REDIRECT_URL)
            ),
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
