"""Writes owned by accounts: personal API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import audit

from .models import ApiToken


def _snapshot(token: ApiToken) -> dict[str, Any]:
    return {
        "name": token.name,
        "lookup": token.lookup,
        "expires_at": token.expires_at.isoformat(),
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def create_api_token(
    *, user: Any, name: str, days: int | None = None, not_after: datetime | None = None
) -> tuple[ApiToken, str]:
    """Mint a token for `user`; returns it with the secret, which is never stored or shown again.

    `days` defaults to API_TOKEN_DEFAULT_DAYS and may not exceed API_TOKEN_MAX_DAYS. `not_after`
    caps the expiry (a token minted with another token never outlives it).
    """
    name = name.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Enter a name for the token."
    elif len(name) > 64:
        errors["name"] = "Use at most 64 characters."
    days = settings.API_TOKEN_DEFAULT_DAYS if days is None else days
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        errors["days"] = f"Choose between 1 and {settings.API_TOKEN_MAX_DAYS} days."
    if errors:
        raise ValidationError(errors)
    expires_at = timezone.now() + timedelta(days=days)
    if not_after is not None:
        expires_at = min(expires_at, not_after)
    with transaction.atomic():
        token, secret = ApiToken.mint(user=user, name=name, expires_at=expires_at)
        audit.record("account.token.create", actor=user, target=token, after=_snapshot(token))
    return token, secret


def revoke_api_token(*, user: Any, token_id: int) -> ApiToken:
    """Revoke one of `user`'s tokens (idempotent). Someone else's token does not exist for them."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token_id, user=user)
        if token.revoked_at is None:
            before = _snapshot(token)
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit.record(
                "account.token.revoke",
                actor=user,
                target=token,
                before=before,
                after=_snapshot(token),
            )
    return token
