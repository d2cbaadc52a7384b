"""Accounts: who a user is (verified e-mail, linked identities), personal API tokens, and the
one-time PINs that confirm an address or sign a customer in.

ApiToken and OIDCIdentity were created by `core` and keep their `core_*` table names (the move to
this app changed only Django's state, not the database).

The rule the whole portal leans on: **`User.email` holds only an address someone proved they
control** (a PIN sent to it, a provider that says `email_verified: true`, or an operator who set
it with `createoperator`), and at most one account holds it, whatever its case (a unique index on
`lower(email)`, see migration 0002). Grants and invitations by e-mail can then trust it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models
from django.utils import timezone

_UNSAFE_IN_NAMES = re.compile(r"[<>\x00-\x1f\x7f\u2028\u2029]")


def clean_display_name(value: object, *, limit: int = 150) -> str:
    """A person's name as the portal stores it: no angle brackets or control characters (a name
    ends up in Git author headers and e-mail headers), whitespace collapsed."""
    text = _UNSAFE_IN_NAMES.sub(" ", str(value or ""))
    return " ".join(text.split())[:limit]


@dataclass(frozen=True)
class SsoSession:
    """What a single sign-on gives the session it starts (written to it at sign-in)."""

    identity_id: int
    groups: tuple[str, ...]
    id_token: str
    refresh_token: str


class Account(User):
    """The signed-in user as the portal sees it: a Django user plus what this session's single
    sign-on asserted. Authentication backends return this proxy, so `oidc_groups` is declared
    (RBAC grants may name a group) rather than attached at run time."""

    oidc_groups: tuple[str, ...] = ()
    sso: SsoSession | None = None  # set by the OIDC backend on the sign-in that made it

    class Meta:
        proxy = True

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.get_username()


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 of the secret is stored; the secret is shown once.

    A token minted with another token has it as `parent`: it never outlives it (expiry capped)
    and is revoked with it (the whole chain below a revoked token stops working).
    """

    PREFIX = "cpt"
    MAX_CHAIN = 8  # tokens minted by tokens minted by …: a bound on walking the chain

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
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
    def mint(
        cls, *, user: Any, name: str, expires_at: datetime, parent: ApiToken | None = None
    ) -> tuple[ApiToken, str]:
        """Create the row; the returned raw token (`cpt_<lookup>_<secret>`) is not kept."""
        lookup = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        raw = f"{cls.PREFIX}_{lookup}_{secret}"
        token = cls.objects.create(
            user=user,
            parent=parent,
            name=name,
            lookup=lookup,
            hashed=_hash_token(raw),
            expires_at=expires_at,
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

    def chain(self) -> list[ApiToken]:
        """This token's ancestors, nearest first (the token that minted it, then its minter…)."""
        found: list[ApiToken] = []
        parent_id = self.parent_id
        while parent_id is not None and len(found) < self.MAX_CHAIN:
            parent = ApiToken.objects.filter(pk=parent_id).first()
            if parent is None:
                break
            found.append(parent)
            parent_id = parent.parent_id
        return found

    @staticmethod
    def parse_lookup(raw: str) -> str | None:
        parts = raw.split("_", 2)
        if len(parts) != 3 or parts[0] != ApiToken.PREFIX or len(parts[1]) != 12:
            return None
        return parts[1]


class OIDCIdentityQuerySet(models.QuerySet["OIDCIdentity"]):
    def current(self) -> OIDCIdentityQuerySet:
        """Identities at the configured issuer that the provider has not disowned."""
        return self.filter(issuer=settings.OIDC_ISSUER.rstrip("/"), lost_at__isnull=True)


class OIDCIdentity(models.Model):
    """A user's identity at an OIDC issuer, matched by (issuer, subject) only, with the e-mail
    and groups the issuer asserted last. A user has at most one identity per issuer.

    `lost_at` is set when the provider no longer knows the subject (a refresh answered
    `invalid_grant`): its groups stop counting until the person signs in there again.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    email = models.EmailField(max_length=254, blank=True)
    email_verified = models.BooleanField(default=False)
    groups = models.JSONField(default=list, blank=True)
    linked_at = models.DateTimeField(default=timezone.now)
    last_login_at = models.DateTimeField(default=timezone.now)
    lost_at = models.DateTimeField(null=True, blank=True)

    objects = OIDCIdentityQuerySet.as_manager()

    class Meta:
        db_table = "core_oidcidentity"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="oidcidentity_unique_sub"),
            models.UniqueConstraint(fields=["user", "issuer"], name="oidcidentity_one_per_issuer"),
        ]
        verbose_name = "OIDC identity"
        verbose_name_plural = "OIDC identities"

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"


class VerifiedEmail(models.Model):
    """Proof that the account's holder controls its address, and how it was given."""

    class Method(models.TextChoices):
        PIN = "pin", "one-time PIN"
        PROVIDER = "provider", "single sign-on (email_verified)"
        OPERATOR = "operator", "set by an operator"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="verified_email"
    )
    email = models.EmailField(max_length=254)
    method = models.CharField(max_length=16, choices=Method.choices)
    verified_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.email} ({self.get_method_display()})"


def pin_digest(pin: str) -> str:
    """A keyed hash of a PIN: the table never holds a PIN a reader could try elsewhere."""
    return hmac.new(settings.SECRET_KEY.encode(), pin.encode(), hashlib.sha256).hexdigest()


class EmailChallenge(models.Model):
    """A one-time PIN e-mailed to an address: to confirm a sign-up, or to sign a customer in.

    A sign-up creates no account until its PIN is confirmed: the pending name and password hash
    wait here. A PIN works once, until `expires_at`, and for `PIN_MAX_ATTEMPTS` wrong tries.
    """

    class Purpose(models.TextChoices):
        SIGNUP = "signup", "confirm a sign-up"
        SIGNIN = "signin", "sign in"
        VERIFY = "verify", "confirm an address"

    PIN_DIGITS: ClassVar[int] = 6

    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    email = models.EmailField(max_length=254)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    pin_hash = models.CharField(max_length=64)
    pending = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["email", "purpose"])]

    def __str__(self) -> str:
        return f"{self.purpose} {self.email}"

    @staticmethod
    def new_pin() -> str:
        return f"{secrets.randbelow(10**EmailChallenge.PIN_DIGITS):0{EmailChallenge.PIN_DIGITS}d}"

    @property
    def is_open(self) -> bool:
        return (
            self.used_at is None
            and self.expires_at > timezone.now()
            and self.attempts < settings.PIN_MAX_ATTEMPTS
        )

    def matches(self, pin: str) -> bool:
        return hmac.compare_digest(self.pin_hash, pin_digest(pin.strip()))
