"""Accounts: personal API tokens and the links between users and their OIDC identities.

Both tables were created by `core` (they keep their `core_*` table names: the move to this app
changed only Django's state, not the database)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 of the secret is stored; the secret is shown once."""

    PREFIX = "cpt"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=64)
    lookup = models.CharField(max_length=16, unique=True)
    hashed = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        db_table = "core_apitoken"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.PREFIX}_{self.lookup}_…)"

    @classmethod
    def mint(cls, *, user: Any, name: str, expires_at: datetime) -> tuple[ApiToken, str]:
        """Create the row; the returned raw token (`cpt_<lookup>_<secret>`) is not kept."""
        lookup = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        raw = f"{cls.PREFIX}_{lookup}_{secret}"
        token = cls.objects.create(
            user=user, name=name, lookup=lookup, hashed=_hash_token(raw), expires_at=expires_at
        )
        return token, raw

    @property
    def display(self) -> str:
        return f"{self.PREFIX}_{self.lookup}_…"

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > timezone.now() else "expired"

    def matches(self, raw: str) -> bool:
        return secrets.compare_digest(self.hashed, _hash_token(raw))

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @staticmethod
    def parse_lookup(raw: str) -> str | None:
        parts = raw.split("_", 2)
        if len(parts) != 3 or parts[0] != ApiToken.PREFIX or len(parts[1]) != 12:
            return None
        return parts[1]


class OIDCIdentity(models.Model):
    """The link between a user and their identity at the OIDC issuer, with the groups the issuer
    asserted at the last sign-in (RBAC grants may name a group)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    groups = models.JSONField(default=list, blank=True)
    last_login_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "core_oidcidentity"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="oidcidentity_unique_sub")
        ]
        verbose_name = "OIDC identity"
        verbose_name_plural = "OIDC identities"

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"
