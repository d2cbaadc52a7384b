"""Members and invitations of an Organization: pages, e-mails, grants, audit, Git."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from core.models import AuditEvent
from orgs.models import Invitation
from rbac.models import UserAccess
from tests.conftest import make_user
from tests.gitutil import files

pytestmark = pytest.mark.django_db


def invite(client, email="new@example.test", tier="operator", **extra):
    """Invite through the page; the mail leaves through the outbox once the request committed."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/orgs/acme/members/invite/", {"email": email, "tier": tier, **extra})


def token_from_mail(message) -> str:
    return re.search(r"/invitations/([^/\s]+)/", message.body).group(1)


def test_members_page_lists_who_tier_scope_since(cast, client_for):
    page = client_for(cast["viewer"]).get("/orgs/acme/members/")
    assert page.status_code == 200
    text = page.content.decode()
    for name in ("owner", "admin", "operator", "developer", "viewer"):
        assert name in text
    assert "every dev Environment" in text  # the developer's forced scope, in words
    assert "member_b" not in text and "Invite by e-mail" not in text  # viewer cannot invite
    assert (
        "Invite by e-mail" in client_for(cast["admin"]).get("/orgs/acme/members/").content.decode()
    )
    assert client_for(cast["member_b"]).get("/orgs/acme/members/").status_code == 404
    assert client_for(None).get("/orgs/acme/members/").status_code == 302
    assert b"/orgs/acme/members/" in client_for(cast["viewer"]).get("/orgs/acme/").content


def test_invite_mail_accept_creates_grant_and_cr(cast, client_for, on_commit):
    response = invite(client_for(cast["admin"]), email="New@Example.test")
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.email == "new@example.test" and invitation.state == "pending"
    assert invitation.expires_at > timezone.now() + timedelta(hours=71)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@example.test"]
    token = token_from_mail(mail.outbox[0])
    assert invitation.token_hash != token and len(invitation.token_hash) == 64  # stored hashed
    assert AuditEvent.objects.filter(action="members.invite", org_slug="acme").count() == 1

    newcomer = make_user("new")
    assert client_for(None).get(f"/invitations/{token}/").status_code == 302  # sign in first
    page = client_for(newcomer).get(f"/invitations/{token}/")
    assert page.status_code == 200 and b"Accept invitation" in page.content
    with on_commit():
        accepted = client_for(newcomer).post(f"/invitations/{token}/")
    assert accepted.status_code == 302 and accepted["Location"] == "/orgs/acme/"
    grant = UserAccess.objects.get(user=newcomer)
    assert grant.tier == "operator" and grant.org_slug == "acme"
    invitation.refresh_from_db()
    assert invitation.state == "accepted" and invitation.accepted_by == newcomer
    assert AuditEvent.objects.filter(action="members.accept").count() == 1
    assert f"organizations/acme/access/{grant.pk}.yaml" in files()
    # a link works once
    assert client_for(newcomer).post(f"/invitations/{token}/").status_code == 410


def test_accept_needs_the_invited_address(cast, client_for):
    invite(client_for(cast["owner"]), email="someone@example.test")
    token = token_from_mail(mail.outbox[0])
    wrong = client_for(cast["outsider"]).post(f"/invitations/{token}/")
    assert wrong.status_code == 403
    assert b"This invitation is for someone@example.test" in wrong.content
    assert not UserAccess.objects.filter(user=cast["outsider"]).exists()
    assert Invitation.objects.get().state == "pending"
    assert client_for(cast["outsider"]).get("/invitations/not-a-token/").status_code == 404


def test_invitations_never_make_owners_and_respect_own_tier(cast, client_for):
    owner_try = invite(client_for(cast["owner"]), tier="owner")
    assert owner_try.status_code == 400 and not Invitation.objects.exists()
    assert invite(client_for(cast["operator"])).status_code == 403
    assert invite(client_for(cast["member_b"])).status_code == 404
    assert invite(client_for(cast["admin"]), tier="admin").status_code == 302
    assert len(mail.outbox) == 1


def test_resend_rotates_token_and_revoke_kills_it(cast, client_for):
    client = client_for(cast["admin"])
    invite(client)
    invitation = Invitation.objects.get()
    first = token_from_mail(mail.outbox[0])
    with TestCase.captureOnCommitCallbacks(execute=True):
        resent = client.post(f"/orgs/acme/members/invitations/{invitation.pk}/resend/")
    assert resent.status_code == 302
    second = token_from_mail(mail.outbox[1])
    assert first != second
    newcomer = make_user("new")
    assert client_for(newcomer).get(f"/invitations/{first}/").status_code == 404
    assert (
        client_for(cast["viewer"])
        .post(f"/orgs/acme/members/invitations/{invitation.pk}/revoke/")
        .status_code
        == 403
    )
    assert client.post(f"/orgs/acme/members/invitations/{invitation.pk}/revoke/").status_code == 302
    assert client_for(newcomer).post(f"/invitations/{second}/").status_code == 410
    assert not UserAccess.objects.filter(user=newcomer).exists()
    assert {
        e.action
        for e in AuditEvent.objects.filter(org_slug="acme", action__startswith="members.invite")
    } == {
        "members.invite",
        "members.invite.resend",
        "members.invite.revoke",
    }


def test_expired_invitation_is_refused(cast, client_for):
    invite(client_for(cast["owner"]))
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    newcomer = make_user("new")
    response = client_for(newcomer).post(f"/invitations/{token_from_mail(mail.outbox[0])}/")
    assert response.status_code == 410 and b"expired" in response.content
    assert not UserAccess.objects.filter(user=newcomer).exists()


def test_change_tier_and_remove(cast, client_for, on_commit):
    grant = UserAccess.objects.get(user=cast["viewer"])
    with on_commit():
        response = client_for(cast["admin"]).post(
            f"/orgs/acme/members/grants/{grant.pk}/tier/", {"tier": "operator"}
        )
    assert response.status_code == 302
    assert UserAccess.objects.get(user=cast["viewer"]).tier == "operator"
    # to developer: the grant is re-scoped to env-type=dev
    client_for(cast["admin"]).post(
        f"/orgs/acme/members/grants/{grant.pk}/tier/", {"tier": "developer"}
    )
    moved = UserAccess.objects.get(user=cast["viewer"])
    assert (
        moved.tier == "developer" and {"key": "openova.io/env-type", "value": "dev"} in moved.scopes
    )
    # an admin cannot raise anyone to owner, nor touch the owner
    assert (
        client_for(cast["admin"])
        .post(f"/orgs/acme/members/grants/{moved.pk}/tier/", {"tier": "owner"})
        .status_code
        == 403
    )
    owner_grant = UserAccess.objects.get(user=cast["owner"])
    assert (
        client_for(cast["admin"])
        .post(f"/orgs/acme/members/grants/{owner_grant.pk}/tier/", {"tier": "viewer"})
        .status_code
        == 403
    )
    with on_commit():
        removed = client_for(cast["admin"]).post(f"/orgs/acme/members/{cast['viewer'].pk}/remove/")
    assert removed.status_code == 302
    assert not UserAccess.objects.filter(user=cast["viewer"]).exists()
    assert f"organizations/acme/access/{moved.pk}.yaml" not in files()
    assert (
        client_for(cast["operator"])
        .post(f"/orgs/acme/members/{cast['admin'].pk}/remove/")
        .status_code
        == 403
    )


def test_last_owner_cannot_be_removed_or_demoted(cast, client_for):
    client = client_for(cast["owner"])
    owner_grant = UserAccess.objects.get(user=cast["owner"])
    demote = client.post(f"/orgs/acme/members/grants/{owner_grant.pk}/tier/", {"tier": "admin"})
    assert demote.status_code == 409 and b"last owner" in demote.content
    remove = client.post(f"/orgs/acme/members/{cast['owner'].pk}/remove/")
    assert remove.status_code == 409
    assert UserAccess.objects.get(pk=owner_grant.pk).tier == "owner"


def test_ownership_transfer(cast, client_for, on_commit):
    assert (
        client_for(cast["admin"])
        .post("/orgs/acme/members/transfer/", {"to": cast["admin"].pk})
        .status_code
        == 403
    )
    with on_commit():
        response = client_for(cast["owner"]).post(
            "/orgs/acme/members/transfer/", {"to": cast["admin"].pk}
        )
    assert response.status_code == 302
    assert UserAccess.objects.get(user=cast["admin"], org_slug="acme").tier == "owner"
    assert UserAccess.objects.get(user=cast["owner"], org_slug="acme").tier == "admin"
    assert AuditEvent.objects.filter(action="organization.transfer", org_slug="acme").count() == 1
    # now the old owner may be removed by the new one
    assert (
        client_for(cast["admin"]).post(f"/orgs/acme/members/{cast['owner'].pk}/remove/").status_code
        == 302
    )


def test_access_matrix(cast, client_for):
    page = client_for(cast["viewer"]).get("/orgs/acme/members/matrix/")
    assert page.status_code == 200
    rows = {member.user: cells for member, cells in page.context["rows"]}
    envs = [e.name for e in page.context["envs"]]
    assert envs == ["acme-dev", "acme-prod"]
    assert rows[cast["developer"]] == ["developer", ""]
    assert rows[cast["owner"]] == ["owner", "owner"]
    assert rows[cast["viewer"]] == ["viewer", "viewer"]
    assert client_for(cast["outsider"]).get("/orgs/acme/members/matrix/").status_code == 404


def test_group_grants_are_listed(cast, client_for):
    from rbac import services as rbac_services

    rbac_services.assign(
        by=cast["owner"],
        group="acme-devops",
        tier="operator",
        scopes=[{"key": "openova.io/organization", "value": "acme"}],
    )
    page = client_for(cast["viewer"]).get("/orgs/acme/members/")
    assert b"group acme-devops" in page.content
    matrix = client_for(cast["viewer"]).get("/orgs/acme/members/matrix/")
    assert {m.name: cells for m, cells in matrix.context["rows"]}["group acme-devops"] == [
        "operator",
        "operator",
    ]


def test_operator_confirms_an_invitation_for_an_existing_account(cast, client_for, on_commit):
    invite(client_for(cast["owner"]), email="member_b@example.test", tier="viewer")
    invitation = Invitation.objects.get()
    url = f"/orgs/acme/members/invitations/{invitation.pk}/confirm/"
    assert client_for(cast["owner"]).post(url).status_code == 403  # owners are not operators
    assert not UserAccess.objects.filter(user=cast["member_b"], org_slug="acme").exists()
    with on_commit():
        assert client_for(cast["sovereign_operator"]).post(url).status_code == 302
    assert UserAccess.objects.get(user=cast["member_b"], org_slug="acme").tier == "viewer"
    invitation.refresh_from_db()
    assert invitation.state == "accepted" and invitation.accepted_by == cast["member_b"]
    event = AuditEvent.objects.get(action="members.accept")
    assert event.actor == cast["sovereign_operator"] and event.after["user"] == "member_b"
