"""Members and invitations of an Organization (SPEC §5): every write audited, grants re-delivered.

A member is a user holding at least one grant scoped to the Organization. Tiers are changed and
removed through `rbac.services`, so the authorization rules (admin or higher in that scope, up to
one's own tier, only owners touch owners) and the last-owner guard apply to every door alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core import audit, outbox
from core.actors import Actor, person
from core.errors import ConflictError
from gitops import naming
from rbac import access, tiers
from rbac import services as rbac_services
from rbac.models import UserAccess

from .models import Environment, Invitation, InvitationState, Organization

log = logging.getLogger(__name__)
OWNER = "owner"


def org_scope(org: Organization) -> list[dict[str, str]]:
    return [{"key": rbac_services.ORG_LABEL, "value": org.slug}]


# --- what a grant can be narrowed to: the Organization's real objects, never raw label keys ----


@dataclass(frozen=True)
class ScopeOption:
    """One choice of a scope picker: its group ("Environments"), how it reads, its label terms
    (ANDed with the Organization's)."""

    group: str
    label: str
    terms: tuple[tuple[str, str], ...]

    @property
    def value(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.terms)


ScopeSource = Callable[[Organization], list[ScopeOption]]
_scope_sources: list[ScopeSource] = []


def register_scope_source(source: ScopeSource) -> ScopeSource:
    """Apps above orgs add their objects to the pickers (marketplace: Applications)."""
    if source not in _scope_sources:
        _scope_sources.append(source)
    return source


def scope_options(org: Organization) -> list[ScopeOption]:
    """The Environments of `org`, its Environment types, then what registered sources offer."""
    envs = list(org.environments.order_by("name").only("name", "env_type"))
    options = [
        ScopeOption("Environments", env.name, ((naming.ENVIRONMENT_LABEL, env.name),))
        for env in envs
    ]
    types = sorted({env.env_type for env in envs}, key=rbac_services.ENV_TYPES.index)
    options += [
        ScopeOption("Environment types", f"every {t} Environment", ((naming.ENV_TYPE_LABEL, t),))
        for t in types
    ]
    for source in _scope_sources:
        options += source(org)
    return options


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Member:
    """A user, or an OIDC group (`user` None), with their grants in one Organization."""

    user: Any
    group: str = ""
    grants: list[UserAccess] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.user.get_username() if self.user is not None else f"group {self.group}"

    @property
    def tier(self) -> str:
        return max(self.grants, key=lambda g: g.level).tier

    @property
    def since(self) -> datetime:
        return min(g.created_at for g in self.grants)

    @property
    def is_owner(self) -> bool:
        return any(g.tier == OWNER for g in self.grants)


def members(org: Organization) -> list[Member]:
    """The users and groups with live grants in `org`, highest tier first, groups last."""
    by_subject: dict[tuple[int, str], Member] = {}
    rows = UserAccess.objects.in_org(org.slug).live().select_related("user").order_by("created_at")
    for grant in rows:
        key = (grant.user_id or 0, grant.group)
        member = by_subject.setdefault(key, Member(grant.user, grant.group))
        member.grants.append(grant)
    return sorted(
        by_subject.values(),
        key=lambda m: (m.user is None, -tiers.get(m.tier).level, m.name),
    )


def owner_ids(org_slug: str, *, excluding: int | None = None) -> set[int]:
    qs = UserAccess.objects.in_org(org_slug).live().filter(tier=OWNER, user__isnull=False)
    if excluding is not None:
        qs = qs.exclude(pk=excluding)
    return set(qs.values_list("user_id", flat=True))


@rbac_services.guard_grant_change
def _keep_an_owner(*, grant: UserAccess, new_tier: str | None) -> None:
    if grant.tier != OWNER or new_tier == OWNER or not grant.org_slug or grant.user_id is None:
        return
    if not owner_ids(grant.org_slug, excluding=grant.pk):
        raise ConflictError(
            {
                "tier": "The last owner cannot be removed or demoted; transfer ownership first.",
            }
        )


class _Directory:
    def kind(self, slug: str) -> str | None:
        return Organization.objects.filter(slug=slug).values_list("kind", flat=True).first()

    def management_slug(self) -> str | None:
        if settings.MANAGEMENT_ORG:
            return str(settings.MANAGEMENT_ORG)
        internal = Organization.objects.filter(kind="internal").order_by("created_at", "pk")
        return internal.values_list("slug", flat=True).first()


rbac_services.organization_directory(_Directory)


def _invitation_scopes(
    org: Organization, extra: list[dict[str, str]] | None
) -> list[dict[str, str]]:
    terms = [t for t in (extra or []) if t.get("key") != rbac_services.ORG_LABEL]
    return [*org_scope(org), *terms]


INVITATION_MAIL_TASK = "orgs.tasks.send_invitation_task"


def _token_for(invitation: Invitation) -> str:
    """The invitation's link token, derived from the row (id, how often it was sent, expiry) and
    the portal's secret key: the outbox can e-mail it after the commit without the secret ever
    being stored (only its hash is), and a resend makes the old link stop working."""
    message = (
        f"invitation:{invitation.pk}:{invitation.sent_count}:{invitation.expires_at.isoformat()}"
    )
    digest = hmac.new(settings.SECRET_KEY.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _queue_mail(invitation: Invitation, *, by: Actor, link_base: str, event: Any) -> None:
    """E-mail the link after the commit through the outbox (retried while the mail server is
    down); the row carries the invitation id and the portal's address, never the token."""
    outbox.enqueue(
        INVITATION_MAIL_TASK,
        f"{invitation.pk} {link_base.rstrip('/')}"[:128],
        actor=by,
        audit_event=event,
    )


def send_invitation_mail(*, key: str) -> None:
    """The outbox task: e-mail the current link of a pending invitation (a resend since this row
    was queued sends the newer link; a revoked or accepted invitation gets nothing)."""
    pk, _, link_base = key.partition(" ")
    invitation = (
        Invitation.objects.select_related("organization", "invited_by").filter(pk=pk).first()
    )
    if invitation is None or invitation.effective_state != InvitationState.PENDING:
        return
    token = _token_for(invitation)
    if hash_token(token) != invitation.token_hash:
        return
    _send(invitation, token, link_base=link_base)


def _send(invitation: Invitation, token: str, *, link_base: str) -> None:
    link = f"{link_base.rstrip('/')}/invitations/{token}/"
    org = invitation.organization
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "An operator"
    send_mail(
        subject=f"You are invited to {org.display_name} on Catalyst",
        message=(
            f"{inviter} invited you to the Organization {org.display_name} ({org.slug}) "
            f"as {invitation.tier}.\n\nAccept the invitation: {link}\n\n"
            f"The link works until {invitation.expires_at:%Y-%m-%d %H:%M} UTC and only for "
            f"{invitation.email}.\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


def _expiry() -> datetime:
    return timezone.now() + timedelta(hours=settings.INVITATION_TTL_HOURS)


def invite(
    *,
    by: Actor,
    org: Organization,
    email: str,
    tier: str,
    scopes: list[dict[str, str]] | None = None,
    link_base: str,
) -> Invitation:
    """Invite `email` with `tier` (never owner); the link is e-mailed after the commit."""
    email = (email or "").strip().lower()
    if tier == OWNER:
        raise ValidationError(
            {"tier": "Invitations cannot make owners; transfer ownership instead."}
        )
    if tier not in tiers.names():
        raise ValidationError({"tier": f"Choose one of {', '.join(tiers.names()[:-1])}."})
    wanted = rbac_services.normalize_scopes(tier, _invitation_scopes(org, scopes))
    rbac_services.authorize_grant_change(by=by, scopes=wanted, tier=tier)
    if not org.is_writable:
        raise ConflictError({"state": f"{org.slug} is {org.state}; resume it first."})
    if any(m.user is not None and m.user.email.lower() == email for m in members(org)):
        raise ConflictError({"email": f"{email} is already a member of {org.slug}."})
    expires = _expiry()
    with transaction.atomic():
        if org.invitations.open().filter(email=email).exists():
            raise ConflictError({"email": f"{email} already has a pending invitation; resend it."})
        invitation = Invitation.objects.create(
            organization=org,
            email=email,
            tier=tier,
            scopes=wanted,
            token_hash=secrets.token_hex(32),  # replaced below, once the row has its id
            expires_at=expires,
            invited_by=person(by),
            sent_at=timezone.now(),
            sent_count=1,
        )
        invitation.token_hash = hash_token(_token_for(invitation))
        invitation.save(update_fields=["token_hash"])
        event = audit.record(
            "members.invite",
            actor=by,
            target=invitation,
            org_slug=org.slug,
            after={
                "email": email,
                "tier": tier,
                "scopes": wanted,
                "expires_at": expires.isoformat(),
            },
        )
        _queue_mail(invitation, by=by, link_base=link_base, event=event)
    return invitation


def _authorize_invitation(by: Actor, invitation: Invitation) -> None:
    rbac_services.authorize_grant_change(by=by, scopes=invitation.scopes, tier=invitation.tier)


def resend_invitation(*, by: Actor, invitation: Invitation, link_base: str) -> Invitation:
    """A fresh token and expiry (the old link stops working), e-mailed again."""
    _authorize_invitation(by, invitation)
    if invitation.state != InvitationState.PENDING:
        raise ConflictError({"state": f"This invitation is {invitation.state}."})
    with transaction.atomic():
        invitation.expires_at = _expiry()
        invitation.sent_count += 1
        invitation.sent_at = timezone.now()
        invitation.token_hash = hash_token(_token_for(invitation))
        invitation.save(update_fields=["token_hash", "expires_at", "sent_at", "sent_count"])
        event = audit.record(
            "members.invite.resend",
            actor=by,
            target=invitation,
            org_slug=invitation.organization.slug,
            after={
                "expires_at": invitation.expires_at.isoformat(),
                "sent_count": invitation.sent_count,
            },
        )
        _queue_mail(invitation, by=by, link_base=link_base, event=event)
    return invitation


def revoke_invitation(*, by: Actor, invitation: Invitation) -> Invitation:
    _authorize_invitation(by, invitation)
    if invitation.state != InvitationState.PENDING:
        raise ConflictError({"state": f"This invitation is {invitation.state}."})
    with transaction.atomic():
        Invitation.objects.filter(pk=invitation.pk).update(state=InvitationState.REVOKED)
        invitation.state = InvitationState.REVOKED
        audit.record(
            "members.invite.revoke",
            actor=by,
            target=invitation,
            org_slug=invitation.organization.slug,
            before={"state": "pending"},
            after={"state": "revoked"},
        )
    return invitation


def invitation_for_token(token: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=hash_token(token))
        .first()
    )


def confirm_invitation(*, by: Actor, invitation: Invitation) -> Invitation:
    """A Sovereign operator accepts on behalf of the invited address's existing account (for a
    person whose sign-in address differs or who cannot open the link)."""
    if not access.is_operator(by, "members.update"):
        raise PermissionDenied("Only a Sovereign operator can confirm an invitation.")
    if invitation.effective_state != InvitationState.PENDING:
        raise ConflictError({"state": f"This invitation is {invitation.effective_state}."})
    users = list(
        get_user_model().objects.filter(email__iexact=invitation.email, is_active=True)[:2]
    )
    if len(users) != 1:
        raise ValidationError(
            {"email": f"No single account uses {invitation.email}; the person must sign up first."}
        )
    return _accept(invitation, user=users[0], by=by)


def _accept(invitation: Invitation, *, user: Any, by: Actor) -> Invitation:
    with transaction.atomic():
        Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
        invitation.state = InvitationState.ACCEPTED
        invitation.accepted_by = user
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["state", "accepted_by", "accepted_at"])
        audit.record(
            "members.accept",
            actor=by,
            target=invitation,
            org_slug=invitation.organization.slug,
            after={"email": invitation.email, "tier": invitation.tier, "user": user.get_username()},
        )
        rbac_services.assign(by=by, user=user, tier=invitation.tier, scopes=invitation.scopes)
    return invitation


def accept_invitation(*, user: Any, token: str) -> Invitation:
    """Accept: the signed-in user's e-mail must be the invited one; creates the grant."""
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("organization")
            .filter(token_hash=hash_token(token))
            .first()
        )
        if invitation is None:
            raise ValidationError({"token": "This invitation link is not valid."})
        state = invitation.effective_state
        if state != InvitationState.PENDING:
            raise ConflictError({"token": f"This invitation is {state}; ask for a new one."})
        if (user.email or "").strip().lower() != invitation.email:
            raise PermissionDenied(
                f"This invitation is for {invitation.email}, but you are signed in as "
                f"{user.email or user.get_username()}. Sign in with the invited address."
            )
        return _accept(invitation, user=user, by=user)


def change_tier(*, by: Actor, grant: UserAccess, tier: str) -> UserAccess:
    """Move one grant to another tier (its scope stays; developer keeps env-type=dev)."""
    new_scopes = rbac_services.normalize_scopes(tier, grant.scopes)
    rbac_services.authorize_grant_change(
        by=by, scopes=new_scopes, tier=tier, current_tier=grant.tier
    )
    with transaction.atomic():
        if rbac_services.scope_key(new_scopes) == rbac_services.scope_key(grant.scopes):
            result = rbac_services.assign(
                by=by,
                user=grant.user,
                group=grant.group,
                tier=tier,
                scopes=new_scopes,
                expires_at=grant.expires_at,
            )
            return result.grant
        rbac_services.revoke(by=by, grant=grant, authorize=False)
        return rbac_services.assign(
            by=by,
            user=grant.user,
            group=grant.group,
            tier=tier,
            scopes=new_scopes,
            expires_at=grant.expires_at,
        ).grant


def remove_member(*, by: Actor, org: Organization, user: Any) -> int:
    """Revoke every grant `user` holds in `org` (refused for the last owner)."""
    grants = list(UserAccess.objects.in_org(org.slug).filter(user=user))
    if not grants:
        raise ValidationError({"user": f"{user.get_username()} is not a member of {org.slug}."})
    with transaction.atomic():
        for grant in grants:
            rbac_services.revoke(by=by, grant=grant)
    return len(grants)


def transfer_ownership(*, by: Actor, org: Organization, to: Any) -> None:
    """Make `to` (a member) owner of `org`; `by` (an owner) steps down to admin."""
    scope = org_scope(org)
    if rbac_services.level_in(by, scope) < tiers.get(OWNER).level:
        raise PermissionDenied("Only an owner can transfer ownership.")
    owner = person(by)
    if owner is None:
        raise PermissionDenied("Only an owner can transfer ownership.")
    if to == owner or to.pk == owner.pk:
        raise ValidationError({"to": "Choose another member."})
    if not UserAccess.objects.in_org(org.slug).live().filter(user=to).exists():
        raise ValidationError({"to": f"{to.get_username()} is not a member of {org.slug}."})
    with transaction.atomic():
        audit.record(
            "organization.transfer",
            actor=by,
            target=org,
            org_slug=org.slug,
            before={"owner": owner.get_username()},
            after={"owner": to.get_username()},
        )
        rbac_services.assign(by=by, user=to, tier=OWNER, scopes=scope)
        mine = UserAccess.objects.in_org(org.slug).filter(user=owner, tier=OWNER)
        for grant in mine:
            if rbac_services.scope_key(grant.scopes) == rbac_services.scope_key(scope):
                rbac_services.assign(by=by, user=owner, tier="admin", scopes=scope)
    access.forget(by)
    access.forget(to)


def access_matrix(org: Organization) -> tuple[list[Environment], list[tuple[Member, list[str]]]]:
    """Users × Environments → the highest tier each user acts with there ("" = none)."""
    envs = list(org.environments.select_related("organization").order_by("env_type"))
    rows = []
    for member in members(org):
        cells = []
        for env in envs:
            labels = env.rbac_labels()
            matching = [
                g
                for g in member.grants
                if access.scope_matches(
                    tuple((s["key"], s["value"]) for s in g.scopes), labels, read=False
                )
            ]
            cells.append(max(matching, key=lambda g: g.level).tier if matching else "")
        rows.append((member, cells))
    return envs, rows


def find_member_user(org: Organization, user_id: int) -> Any:
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not UserAccess.objects.in_org(org.slug).filter(user=user).exists():
        return None
    return user
