"""Single sign-on identities: the linking rules, and an audit event for every link, unlink, claim
change and loss.

Rules:
- a person at the provider is their (issuer, subject), never their e-mail or username;
- an unknown subject is linked to an existing account by e-mail only when the provider says
  `email_verified: true` (a JSON boolean: a missing claim or the string "true" do not count) *and*
  that account's address is verified here; linking turns the account's local password off (the
  provider is its door from then on), and an account has at most one identity per issuer;
- otherwise a new account is made; its e-mail is the asserted one only when verified and free;
- an unverified e-mail is never copied onto an account (it stays on the identity, for display);
- usernames are given once and never follow `preferred_username` afterwards: a rename at the
  provider cannot hand one person's username to another.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import audit

from .models import Account, OIDCIdentity, VerifiedEmail, clean_display_name

logger = logging.getLogger(__name__)

MAX_GROUPS = 200
_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


def groups_from(claims: dict[str, Any]) -> list[str]:
    """The groups claim as a sorted list of names (a single string counts as one group)."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return []
    names = {str(g).strip()[:128] for g in value if isinstance(g, str | int) and str(g).strip()}
    return sorted(names)[:MAX_GROUPS]


@dataclass(frozen=True)
class Claims:
    """What the provider asserted about one subject, parsed strictly."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    preferred_username: str
    first_name: str
    last_name: str
    groups: tuple[str, ...]

    @classmethod
    def parse(cls, issuer: str, claims: dict[str, Any]) -> Claims:
        return cls(
            issuer=issuer,
            subject=str(claims["sub"]),
            email=str(claims.get("email") or "").strip().lower()[:254],
            email_verified=claims.get("email_verified") is True,
            preferred_username=str(claims.get("preferred_username") or ""),
            first_name=clean_display_name(claims.get("given_name")),
            last_name=clean_display_name(claims.get("family_name")),
            groups=tuple(groups_from(claims)),
        )


def _snapshot(identity: OIDCIdentity) -> dict[str, Any]:
    return {
        "issuer": identity.issuer,
        "subject": identity.subject,
        "email": identity.email,
        "email_verified": identity.email_verified,
        "groups": list(identity.groups),
    }


def _profile(user: Account) -> dict[str, Any]:
    return {
        "account_email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }


def _new_username(claims: Claims) -> str:
    wanted = claims.preferred_username or claims.email.split("@")[0] or claims.subject
    base = _USERNAME_UNSAFE.sub("-", wanted)[:140] or "user"
    candidate, n = base, 1
    while Account.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _email_is_free(email: str, user: Account | None) -> bool:
    others = Account.objects.filter(email__iexact=email)
    if user is not None:
        others = others.exclude(pk=user.pk)
    return bool(email) and not others.exists()


def linkable_account(claims: Claims) -> Account | None:
    """The existing account an unknown subject may be linked to, by the rules above."""
    if not (claims.email_verified and claims.email):
        return None
    user = (
        Account.objects.filter(
            email__iexact=claims.email,
            verified_email__email__iexact=claims.email,
            is_active=True,
        )
        .exclude(oidc_identities__issuer=claims.issuer)
        .first()
    )
    return user


def _create_account(claims: Claims) -> Account:
    email = claims.email if claims.email_verified and _email_is_free(claims.email, None) else ""
    user = Account.objects.create_user(_new_username(claims), email=email)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    if email:
        VerifiedEmail.objects.create(user=user, email=email, method=VerifiedEmail.Method.PROVIDER)
    audit.record(
        "account.user.create",
        actor=None,
        target=user,
        after={"username": user.username, "email": email, "via": "oidc"},
    )
    return user


def _link(user: Account, claims: Claims, *, created: bool) -> OIDCIdentity:
    identity = OIDCIdentity.objects.create(
        user=user,
        issuer=claims.issuer,
        subject=claims.subject,
        email=claims.email,
        email_verified=claims.email_verified,
        groups=list(claims.groups),
    )
    after: dict[str, Any] = {**_snapshot(identity), "user": user.get_username()}
    if not created and user.has_usable_password():
        user.set_unusable_password()
        user.save(update_fields=["password"])
        after["local_password"] = "turned off"
    audit.record("account.identity.link", actor=user, target=identity, after=after)
    return identity


def _apply_claims(user: Account, identity: OIDCIdentity, claims: Claims) -> None:
    """Bring the account and the identity up to date with this sign-in's claims, auditing what
    changed. The username never changes; an e-mail reaches the account only when verified."""
    before = {**_snapshot(identity), **_profile(user)}
    if (
        claims.email_verified
        and claims.email != user.email.lower()
        and _email_is_free(claims.email, user)
    ):
        user.email = claims.email
        VerifiedEmail.objects.update_or_create(
            user=user, defaults={"email": claims.email, "method": VerifiedEmail.Method.PROVIDER}
        )
    user.first_name = claims.first_name or user.first_name
    user.last_name = claims.last_name or user.last_name
    user.save(update_fields=["email", "first_name", "last_name"])
    identity.email = claims.email
    identity.email_verified = claims.email_verified
    identity.groups = list(claims.groups)
    identity.last_login_at = timezone.now()
    identity.lost_at = None
    identity.save(update_fields=["email", "email_verified", "groups", "last_login_at", "lost_at"])
    after = {**_snapshot(identity), **_profile(user)}
    if after != before:
        changed = [key for key in after if after[key] != before[key]]
        audit.record(
            "account.identity.claims",
            actor=user,
            target=identity,
            before={key: before[key] for key in changed},
            after={key: after[key] for key in changed},
        )


def sign_in(claims: Claims) -> tuple[Account, OIDCIdentity]:
    """The account of this subject: found by (issuer, subject), linked by verified e-mail, or
    made; with the claims of this sign-in applied."""
    with transaction.atomic():
        identity = (
            OIDCIdentity.objects.select_for_update()
            .filter(issuer=claims.issuer, subject=claims.subject)
            .first()
        )
        if identity is not None:
            user = Account.objects.get(pk=identity.user_id)
        else:
            found = linkable_account(claims)
            user = found or _create_account(claims)
            identity = _link(user, claims, created=found is None)
        _apply_claims(user, identity, claims)
    return user, identity


def refresh(identity: OIDCIdentity, claims: dict[str, Any]) -> OIDCIdentity:
    """A re-validation's userinfo: the groups (and e-mail) as the provider asserts them now."""
    parsed = Claims.parse(identity.issuer, claims)
    if parsed.subject != identity.subject:
        raise ValidationError("The provider answered for another subject.")
    with transaction.atomic():
        user = Account.objects.select_for_update().get(pk=identity.user_id)
        locked = OIDCIdentity.objects.select_for_update().get(pk=identity.pk)
        _apply_claims(user, locked, parsed)
    return locked


def lose(identity: OIDCIdentity, *, reason: str) -> None:
    """The provider refused to renew a session of this subject (account deleted or disabled,
    sessions revoked, signed out there): its groups stop counting — for API tokens too — until
    the person signs in at the provider again. The account and its direct grants stay."""
    with transaction.atomic():
        locked = OIDCIdentity.objects.select_for_update().get(pk=identity.pk)
        if locked.lost_at is not None:
            return
        before = _snapshot(locked)
        locked.lost_at = timezone.now()
        locked.groups = []
        locked.save(update_fields=["lost_at", "groups"])
        audit.record(
            "account.identity.lost",
            actor=None,
            target=locked,
            before=before,
            after={**_snapshot(locked), "reason": reason},
        )


def unlink(*, by: Account, identity_id: int) -> OIDCIdentity:
    """Remove one of `by`'s identities. The account must keep a door: a local password."""
    with transaction.atomic():
        identity = OIDCIdentity.objects.select_for_update().get(pk=identity_id, user_id=by.pk)
        if not Account.objects.get(pk=by.pk).has_usable_password():
            raise ValidationError(
                "Set a password first: without this identity you could not sign in again."
            )
        before = _snapshot(identity)
        identity.delete()
        audit.record(
            "account.identity.unlink",
            actor=by,
            target=audit.Ref("accounts.oidcidentity", str(identity_id), str(identity)),
            before=before,
        )
    return identity
