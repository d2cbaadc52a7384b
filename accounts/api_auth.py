from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION_SECONDS = 60


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer cpt_<lookup>_<secret>` personal API tokens.

    The lookup finds the row; only the SHA-256 of the whole token is compared. A token acts with
    its user's grants, including the OIDC groups of the user's last single sign-on.
    """

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw = raw.strip()
        lookup = ApiToken.parse_lookup(raw)
        token = (
            ApiToken.objects.select_related("user", "user__oidc_identity")
            .filter(lookup=lookup)
            .first()
            if lookup
            else None
        )
        if token is None or not token.matches(raw) or not token.is_active:
            logger.info("API token refused (lookup %s)", lookup or "malformed")
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")
        try:
            user.oidc_groups = list(user.oidc_identity.groups)  # type: ignore[attr-defined]
        except ObjectDoesNotExist:
            user.oidc_groups = []  # type: ignore[attr-defined]
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
