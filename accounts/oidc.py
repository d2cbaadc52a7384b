"""Single sign-on through OpenID Connect (mozilla-django-oidc), configured by discovery.

The issuer's endpoints come from `<OIDC_ISSUER>/.well-known/openid-configuration`, read on first
use and cached per process; nothing talks to the issuer at start-up or during a local sign-in.
Claims map onto the Django user; the groups claim (OIDC_GROUPS_CLAIM) is kept on an
`OIDCIdentity` row and in the session, where `OIDCGroupsMiddleware` exposes it to RBAC as
`request.user.oidc_groups` without a query.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from core import audit

from .models import OIDCIdentity

logger = logging.getLogger(__name__)

GROUPS_SESSION_KEY = "oidc_groups"
ID_TOKEN_SESSION_KEY = "oidc_id_token"  # mozilla-django-oidc's key (OIDC_STORE_ID_TOKEN)
DISCOVERY_TTL_SECONDS = 3600
MAX_GROUPS = 200
_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


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


def provider() -> Provider:
    """The configured issuer's endpoints, from its discovery document (cached for an hour)."""
    issuer = settings.OIDC_ISSUER.rstrip("/")
    if not issuer:
        raise DiscoveryError("OIDC_ISSUER is not set: single sign-on is switched off.")
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(issuer)
        if cached and cached[0] > now:
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


def groups_from(claims: dict[str, Any]) -> list[str]:
    """The groups claim as a sorted list of names (a single string counts as one group)."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return []
    names = {str(g).strip()[:128] for g in value if isinstance(g, str | int) and str(g).strip()}
    return sorted(names)[:MAX_GROUPS]


class PortalOIDCBackend(OIDCAuthenticationBackend):
    """Authorization code flow (PKCE + nonce) against the discovered issuer; claims → user."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django builds the backends for every local sign-in, so this must not call the issuer:
        # the endpoints are properties resolved by discovery when the flow needs them.
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self._id_claims: dict[str, Any] = {}

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

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        self._id_claims = payload
        return super().get_or_create_user(access_token, id_token, payload)

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        userinfo = super().get_userinfo(access_token, id_token, payload)
        # Some issuers put the groups only in the ID token.
        if settings.OIDC_GROUPS_CLAIM not in userinfo and settings.OIDC_GROUPS_CLAIM in payload:
            userinfo = {**userinfo, settings.OIDC_GROUPS_CLAIM: payload[settings.OIDC_GROUPS_CLAIM]}
        return userinfo

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        subject = claims.get("sub")
        if not subject or subject != self._id_claims.get("sub"):
            logger.warning("OIDC sign-in refused: userinfo sub does not match the ID token")
            return False
        if not claims.get("email"):
            logger.warning("OIDC sign-in refused: the issuer sent no email claim")
            return False
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        """The user linked to (issuer, sub); else an unlinked account with the same e-mail,
        unless the issuer says that address is unverified."""
        linked = OIDCIdentity.objects.filter(
            issuer=provider().issuer, subject=str(claims["sub"])
        ).values("user_id")
        if linked.exists():
            return self.UserModel.objects.filter(pk__in=linked)
        if claims.get("email_verified") is False:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(
            email__iexact=claims["email"], oidc_identity__isnull=True
        )

    def get_username(self, claims: dict[str, Any]) -> str:
        wanted = str(claims.get("preferred_username") or claims["email"].split("@")[0])
        base = _USERNAME_UNSAFE.sub("-", wanted)[:140] or "user"
        candidate, n = base, 1
        while self.UserModel.objects.filter(username__iexact=candidate).exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def create_user(self, claims: dict[str, Any]) -> Any:
        with transaction.atomic():
            user = self.UserModel.objects.create_user(
                self.get_username(claims), email=claims["email"]
            )
            user.set_unusable_password()
            user.save(update_fields=["password"])
            audit.record(
                "account.user.create",
                actor=None,
                target=user,
                after={"username": user.username, "via": "oidc"},
            )
            return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        """Refresh the profile and the groups from the claims of this sign-in."""
        user.email = claims["email"][:254]
        user.first_name = str(claims.get("given_name") or user.first_name)[:150]
        user.last_name = str(claims.get("family_name") or user.last_name)[:150]
        wanted = _USERNAME_UNSAFE.sub("-", str(claims.get("preferred_username") or ""))[:150]
        if (
            wanted
            and wanted != user.username
            and not self.UserModel.objects.filter(username__iexact=wanted)
            .exclude(pk=user.pk)
            .exists()
        ):
            user.username = wanted
        user.save(update_fields=["email", "first_name", "last_name", "username"])
        groups = groups_from(claims)
        OIDCIdentity.objects.update_or_create(
            user=user,
            defaults={
                "issuer": provider().issuer,
                "subject": str(claims["sub"]),
                "groups": groups,
                "last_login_at": timezone.now(),
            },
        )
        user.oidc_groups = groups
        return user


class PortalAuthenticationRequestView(OIDCAuthenticationRequestView):
    """/oidc/authenticate/: redirect to the issuer, or explain why single sign-on is down."""

    def __init__(self, **kwargs: Any) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ISSUER:
            raise Http404("Single sign-on is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider().authorization_endpoint
        except DiscoveryError as exc:
            logger.error("single sign-on unavailable: %s", exc)
            return render(request, "accounts/sso_unavailable.html", status=503)
        response: HttpResponse = super().get(request)
        return response


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


@receiver(user_logged_in, dispatch_uid="accounts.oidc.remember_groups")
def remember_groups(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Keep the groups of this sign-in in the session (none for a local sign-in)."""
    if request is not None and hasattr(request, "session"):
        request.session[GROUPS_SESSION_KEY] = list(getattr(user, "oidc_groups", []))
