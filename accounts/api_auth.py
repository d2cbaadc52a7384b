from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import Account, ApiToken, OIDCIdentity

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION_SECONDS = 60
REFUSED = "Invalid, expired or revoked API token."


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer cpt_<lookup>_<secret>` personal API tokens.

    The lookup finds the row; only the SHA-256 of the whole token is compared. The token and
    every token it was minted from must be active. A token acts with its user's grants, including
    the groups of the user's identity at the current provider as last validated there (none once
    the provider disowned it).
    """

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Account, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw = raw.strip()
        lookup = ApiToken.parse_lookup(raw)
        token = ApiToken.objects.filter(lookup=lookup).first() if lookup else None
        if (
            token is None
            or not token.matches(raw)
            or not token.is_active
            or not all(parent.is_active for parent in token.chain())
        ):
            logger.info("API token refused (lookup %s)", lookup or "malformed")
            raise exceptions.AuthenticationFailed(REFUSED)
        user = Account.objects.filter(pk=token.user_id, is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed(REFUSED)
        groups = OIDCIdentity.objects.current().filter(user=user).values_list("groups", flat=True)
        user.oidc_groups = tuple(sorted({g for found in groups for g in found}))
        now = timezone.now()
        if (
            token.last_used_at is None
            or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        ):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return user, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
