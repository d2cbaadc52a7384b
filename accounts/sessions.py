"""How long a session lives, and what single sign-on keeps re-checking while it does.

Everything lives in the session's own data (no assumption about the session backend):

- `SESSION_ABSOLUTE_HOURS` after sign-in the session ends, whatever happens;
- `SESSION_IDLE_MINUTES` without a request it ends too;
- a session started by single sign-on is re-validated at the provider every
  `OIDC_REVALIDATE_MINUTES`: its refresh token is redeemed and userinfo read again, so groups
  removed there stop counting here, and a refused refresh (account deleted or disabled, sessions
  revoked) ends the session. Without a refresh token the browser is sent through a silent
  re-authentication (`prompt=none`) instead. A provider that cannot be reached is given one more
  interval before the session ends.

The groups of the session are what RBAC reads (`Account.oidc_groups`), on pages and streams alike.
"""

from __future__ import annotations

import logging
import time
from enum import Enum
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.signals import user_logged_in
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import reverse

from . import identities, oidc
from .models import Account, OIDCIdentity

logger = logging.getLogger(__name__)

GROUPS_KEY = "oidc_groups"
ID_TOKEN_KEY = "oidc_id_token"  # mozilla-django-oidc's key (OIDC_STORE_ID_TOKEN)
REFRESH_TOKEN_KEY = "oidc_refresh_token"
IDENTITY_KEY = "oidc_identity"
VALIDATED_AT_KEY = "oidc_validated_at"
SIGNED_IN_AT_KEY = "accounts_signed_in_at"
SEEN_AT_KEY = "accounts_seen_at"
SEEN_RESOLUTION_SECONDS = 60  # idle time is tracked to the minute: no session write per request
SSO_KEYS = (GROUPS_KEY, ID_TOKEN_KEY, REFRESH_TOKEN_KEY, IDENTITY_KEY, VALIDATED_AT_KEY)


class Outcome(Enum):
    LIVE = "live"
    EXPIRED = "expired"  # absolute or idle lifetime reached
    REVOKED = "revoked"  # the provider refused the re-validation
    REAUTHENTICATE = "reauthenticate"  # due, and no refresh token: silent re-authentication


@receiver(user_logged_in, dispatch_uid="accounts.sessions.started")
def started(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """A new session: its clock starts, and single sign-on's part is written (or cleared)."""
    if request is None or not hasattr(request, "session"):
        return
    now = time.time()
    request.session[SIGNED_IN_AT_KEY] = now
    request.session[SEEN_AT_KEY] = now
    remember_sso(request, user)


def remember_sso(request: HttpRequest, user: Any) -> None:
    session = request.session
    sso = getattr(user, "sso", None)
    if sso is None:
        for key in SSO_KEYS:
            session.pop(key, None)
        session[GROUPS_KEY] = []
        return
    session[GROUPS_KEY] = list(sso.groups)
    session[ID_TOKEN_KEY] = sso.id_token
    session[REFRESH_TOKEN_KEY] = sso.refresh_token
    session[IDENTITY_KEY] = sso.identity_id
    session[VALIDATED_AT_KEY] = time.time()


def check(request: HttpRequest) -> Outcome:
    """Whether this request's session may go on; ends it (signs out) when it may not."""
    session = request.session
    if auth.SESSION_KEY not in session:
        return Outcome.LIVE
    now = time.time()
    signed_in_at = float(session.get(SIGNED_IN_AT_KEY) or 0)
    seen_at = float(session.get(SEEN_AT_KEY) or 0)
    if (
        now - signed_in_at > settings.SESSION_ABSOLUTE_HOURS * 3600
        or now - seen_at > settings.SESSION_IDLE_MINUTES * 60
    ):
        auth.logout(request)
        return Outcome.EXPIRED
    if now - seen_at > SEEN_RESOLUTION_SECONDS:
        session[SEEN_AT_KEY] = now
    if IDENTITY_KEY in session:
        outcome = _revalidate_if_due(request, now)
        if outcome is not Outcome.LIVE:
            auth.logout(request)
        return outcome
    return Outcome.LIVE


def _revalidate_if_due(request: HttpRequest, now: float) -> Outcome:
    session = request.session
    interval = settings.OIDC_REVALIDATE_MINUTES * 60
    validated_at = float(session.get(VALIDATED_AT_KEY) or 0)
    if now - validated_at <= interval:
        return Outcome.LIVE
    identity = OIDCIdentity.objects.filter(pk=int(session.get(IDENTITY_KEY) or 0)).first()
    if identity is None or identity.lost_at is not None:
        return Outcome.REVOKED
    refresh_token = str(session.get(REFRESH_TOKEN_KEY) or "")
    if not refresh_token:
        return Outcome.REAUTHENTICATE
    # One re-validation per session at a time: a provider that rotates refresh tokens refuses
    # the second use of one, which must not read as "this person is gone".
    lock = f"accounts:revalidate:{session.session_key}"
    if not cache.add(lock, 1, timeout=settings.OIDC_DISCOVERY_TIMEOUT_SECONDS * 3):
        return Outcome.LIVE
    try:
        return _revalidate(request, identity, refresh_token, now, validated_at)
    finally:
        cache.delete(lock)


def _revalidate(
    request: HttpRequest,
    identity: OIDCIdentity,
    refresh_token: str,
    now: float,
    validated_at: float,
) -> Outcome:
    session = request.session
    interval = settings.OIDC_REVALIDATE_MINUTES * 60
    try:
        tokens, userinfo = _refresh(refresh_token)
    except _Refused as exc:
        identities.lose(identity, reason=str(exc))
        logger.info("SSO session ended: the provider refused its re-validation (%s)", exc)
        return Outcome.REVOKED
    except (requests.RequestException, oidc.DiscoveryError, ValueError) as exc:
        logger.warning("SSO re-validation failed: %s", type(exc).__name__)
        # Unreachable: give it one more interval, then end the session (fail closed).
        return Outcome.LIVE if now - validated_at <= 2 * interval else Outcome.REVOKED
    try:
        fresh = identities.refresh(identity, userinfo)
    except ValidationError:
        return Outcome.REVOKED
    session[GROUPS_KEY] = list(fresh.groups)
    session[VALIDATED_AT_KEY] = now
    if tokens.get("refresh_token"):  # a provider that rotates refresh tokens
        session[REFRESH_TOKEN_KEY] = str(tokens["refresh_token"])
    return Outcome.LIVE


class _Refused(Exception):
    """The provider answered, and said no."""


def _refresh(refresh_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Redeem the refresh token (client authentication: HTTP Basic, RFC 6749 §2.3.1) and read
    userinfo with the new access token. `_Refused` when the provider disowns the grant."""
    found = oidc.provider()
    timeout = settings.OIDC_DISCOVERY_TIMEOUT_SECONDS
    answer = requests.post(
        found.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET),
        timeout=timeout,
    )
    if answer.status_code == 400 and _error_of(answer) == "invalid_grant":  # RFC 6749 §5.2
        raise _Refused("the refresh token was refused (invalid_grant)")
    answer.raise_for_status()  # anything else (invalid_client, 5xx) is the portal's problem
    tokens = answer.json()
    info = requests.get(
        found.userinfo_endpoint,
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=timeout,
    )
    if info.status_code == 401:  # a fresh access token refused: the subject is gone
        raise _Refused("userinfo refused a fresh access token")
    info.raise_for_status()
    return tokens, info.json()


def _error_of(answer: requests.Response) -> str:
    try:
        return str(answer.json().get("error", ""))
    except ValueError:
        return ""


def end_message(outcome: Outcome) -> str:
    if outcome is Outcome.EXPIRED:
        return "Your session expired. Please sign in again."
    return "Your session ended at the identity provider. Please sign in again."


def reauthenticate_url(request: HttpRequest) -> str:
    query = urlencode({"next": request.get_full_path(), "prompt": "none"})
    return f"{reverse('oidc_authentication_init')}?{query}"


def account(request: HttpRequest) -> Any:
    """The signed-in Account (with this session's groups), or AnonymousUser."""
    user = auth.get_user(request)
    if user.is_authenticated:
        if not isinstance(user, Account):  # a backend outside this app
            user = Account.objects.get(pk=user.pk)
        user.oidc_groups = tuple(request.session.get(GROUPS_KEY) or ())
    return user
