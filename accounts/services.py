"""Writes owned by accounts: personal API tokens, sign-up and PIN sign-in by e-mail, passwords.

Each service owns its transaction and writes its audit event; e-mails go out after the commit.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import audit, ratelimit
from rbac import access

from .models import Account, ApiToken, EmailChallenge, VerifiedEmail, clean_display_name, pin_digest

TAKEN = "An account with this e-mail already exists. Sign in instead."
PIN_WRONG = "That code is not right. Check the e-mail and try again."
PIN_DEAD = "This code has expired or was used up. Ask for a new one."
TOO_MANY_PINS = "Too many codes were sent to this address. Please wait an hour and try again."


# --- personal API tokens ---------------------------------------------------------------------


def _snapshot(token: ApiToken) -> dict[str, Any]:
    return {
        "name": token.name,
        "lookup": token.lookup,
        "parent": token.parent.lookup if token.parent else None,
        "expires_at": token.expires_at.isoformat(),
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def create_api_token(
    *, user: Account, name: str, days: int | None = None, minted_by: ApiToken | None = None
) -> tuple[ApiToken, str]:
    """Mint a token for `user`; returns it with the secret, which is never stored or shown again.

    `days` defaults to API_TOKEN_DEFAULT_DAYS and may not exceed API_TOKEN_MAX_DAYS. A token
    `minted_by` another becomes its child: it never outlives it and is revoked with it.
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
    if minted_by is not None and len(minted_by.chain()) + 1 >= ApiToken.MAX_CHAIN:
        errors["name"] = "This token is too far down a chain of tokens to mint another."
    if errors:
        raise ValidationError(errors)
    expires_at = timezone.now() + timedelta(days=days)
    if minted_by is not None:
        expires_at = min(expires_at, minted_by.expires_at)
    with transaction.atomic():
        token, secret = ApiToken.mint(user=user, name=name, expires_at=expires_at, parent=minted_by)
        audit.record("account.token.create", actor=user, target=token, after=_snapshot(token))
    return token, secret


def _descendants(token: ApiToken) -> list[ApiToken]:
    found: list[ApiToken] = []
    level = [token.pk]
    for _ in range(ApiToken.MAX_CHAIN):
        children = list(ApiToken.objects.select_for_update().filter(parent_id__in=level))
        if not children:
            break
        found += children
        level = [c.pk for c in children]
    return found


def revoke_api_token(*, user: Account, token_id: int) -> ApiToken:
    """Revoke one of `user`'s tokens and every token minted from it (idempotent). Someone
    else's token does not exist for them."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token_id, user=user)
        now = timezone.now()
        for victim in [token, *_descendants(token)]:
            if victim.revoked_at is not None:
                continue
            before = _snapshot(victim)
            victim.revoked_at = now
            victim.save(update_fields=["revoked_at"])
            audit.record(
                "account.token.revoke",
                actor=user,
                target=victim,
                before=before,
                after={**_snapshot(victim), "with_parent": victim.pk != token.pk},
            )
    return token


# --- e-mailed PINs: sign-up, PIN sign-in, confirming an address -----------------------------


def _send_pin(email: str, pin: str, purpose: str) -> None:
    what = {
        EmailChallenge.Purpose.SIGNUP: "confirm your new account",
        EmailChallenge.Purpose.SIGNIN: "sign in",
        EmailChallenge.Purpose.VERIFY: "confirm your e-mail address",
    }[EmailChallenge.Purpose(purpose)]
    send_mail(
        subject=f"Your Catalyst code: {pin}",
        message=(
            f"Your code to {what} is {pin}.\n\n"
            f"It works once, for {settings.PIN_TTL_MINUTES} minutes. If you did not ask for it, "
            "ignore this e-mail: nothing happens without the code.\n"
        ),
        from_email=None,
        recipient_list=[email],
    )


def _challenge(
    *, purpose: str, email: str, user: Account | None = None, pending: dict[str, Any] | None = None
) -> EmailChallenge:
    """A new PIN for `email` (its earlier open ones of the same purpose stop working), e-mailed
    once it is stored. A challenge without a user and no pending sign-up can never succeed: it
    answers a PIN sign-in for an address no account has, exactly like a real one."""
    if not ratelimit.hit("pin-email", email, limit=settings.PIN_SEND_LIMIT_PER_EMAIL, window=3600):
        raise ValidationError({"email": TOO_MANY_PINS})
    pin = EmailChallenge.new_pin()
    deliverable = user is not None or pending is not None
    with transaction.atomic():
        EmailChallenge.objects.filter(email=email, purpose=purpose, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        challenge = EmailChallenge.objects.create(
            purpose=purpose,
            email=email,
            user=user,
            pending=pending or {},
            pin_hash=pin_digest(pin if deliverable else EmailChallenge.new_pin() + "x"),
            expires_at=timezone.now() + timedelta(minutes=settings.PIN_TTL_MINUTES),
        )
    if deliverable:  # after the commit: the PIN in the e-mail is on record
        _send_pin(email, pin, purpose)
    return challenge


def _use(challenge_id: int, pin: str, purpose: str) -> EmailChallenge:
    """Spend a PIN: the challenge if `pin` is right, else a ValidationError (counting a try)."""
    with transaction.atomic():
        challenge = (
            EmailChallenge.objects.select_for_update()
            .filter(pk=challenge_id, purpose=purpose)
            .first()
        )
        if challenge is None or not challenge.is_open:
            raise ValidationError({"pin": PIN_DEAD})
        right = challenge.matches(pin)
        if right:
            challenge.used_at = timezone.now()
        challenge.attempts += 0 if right else 1
        challenge.save(update_fields=["used_at", "attempts"])
    if not right:
        left = settings.PIN_MAX_ATTEMPTS - challenge.attempts
        raise ValidationError({"pin": PIN_WRONG if left > 0 else PIN_DEAD})
    return challenge


def email_taken(email: str) -> bool:
    return Account.objects.filter(email__iexact=email).exists()


def start_signup(*, email: str, name: str, password: str) -> EmailChallenge:
    """A sign-up waits for its PIN: no account exists (and no address is claimed) until then."""
    email = email.strip().lower()
    if email_taken(email):
        raise ValidationError({"email": TAKEN})
    pending = {
        "name": clean_display_name(name),
        "password": make_password(password) if password else "",
    }
    return _challenge(purpose=EmailChallenge.Purpose.SIGNUP, email=email, pending=pending)


def confirm_signup(*, challenge_id: int, pin: str) -> Account:
    """The PIN proves the address: the account is made, verified, and returned to sign in."""
    challenge = _use(challenge_id, pin, EmailChallenge.Purpose.SIGNUP)
    first, _, last = str(challenge.pending.get("name", "")).partition(" ")
    try:
        with transaction.atomic():
            user = Account.objects.create_user(
                username=challenge.email,
                email=challenge.email,
                first_name=first[:150],
                last_name=last[:150],
            )
            user.password = challenge.pending.get("password") or make_password(None)
            user.save(update_fields=["password"])
            VerifiedEmail.objects.create(
                user=user, email=challenge.email, method=VerifiedEmail.Method.PIN
            )
            audit.record(
                "account.signup",
                actor=user,
                target=user,
                after={"email": user.email, "verified_by": "pin"},
            )
    except IntegrityError:  # the address was claimed meanwhile
        raise ValidationError({"pin": TAKEN}) from None
    return user


def pin_signin_allowed(user: Account) -> bool:
    """Customers may sign in with an e-mailed PIN; not Sovereign operators (an inbox must not
    open the console), nor accounts whose door is single sign-on."""
    return (
        settings.PIN_SIGNIN_ENABLED
        and user.is_active
        and hasattr(user, "verified_email")
        and user.verified_email.email.lower() == user.email.lower()
        and not user.oidc_identities.exists()
        and not access.is_global(user, "audit.read")
    )


def start_pin_signin(*, email: str) -> EmailChallenge:
    """Always answers with a challenge, so the page cannot tell whether the address has an
    account; only a real, allowed account gets an e-mail."""
    email = email.strip().lower()
    user = Account.objects.filter(email__iexact=email).first()
    allowed = user if user is not None and pin_signin_allowed(user) else None
    return _challenge(purpose=EmailChallenge.Purpose.SIGNIN, email=email, user=allowed)


def confirm_pin_signin(*, challenge_id: int, pin: str) -> Account:
    challenge = _use(challenge_id, pin, EmailChallenge.Purpose.SIGNIN)
    user = Account.objects.filter(pk=challenge.user_id or 0).first()
    if user is None or not pin_signin_allowed(user):
        raise ValidationError({"pin": PIN_DEAD})
    return user


def start_email_verification(*, user: Account) -> EmailChallenge:
    """For an account made before addresses were confirmed: prove it now."""
    if not user.email:
        raise ValidationError({"email": "Your account has no e-mail address to confirm."})
    return _challenge(purpose=EmailChallenge.Purpose.VERIFY, email=user.email.lower(), user=user)


def confirm_email(*, user: Account, challenge_id: int, pin: str) -> VerifiedEmail:
    challenge = _use(challenge_id, pin, EmailChallenge.Purpose.VERIFY)
    if challenge.user_id != user.pk or challenge.email != user.email.lower():
        raise ValidationError({"pin": PIN_DEAD})
    with transaction.atomic():
        verified, _ = VerifiedEmail.objects.update_or_create(
            user=user, defaults={"email": challenge.email, "method": VerifiedEmail.Method.PIN}
        )
        audit.record(
            "account.email.verify", actor=user, target=user, after={"email": challenge.email}
        )
    return verified


# --- passwords -------------------------------------------------------------------------------


def password_changed(*, user: Account, how: str) -> None:
    """Audit a password change (`how`: "change", "set" or "reset"); Django's forms did it."""
    audit.record("account.password." + how, actor=user, target=user, after={"how": how})
