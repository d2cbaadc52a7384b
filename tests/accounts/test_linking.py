"""Who a single sign-on makes you: linking by (issuer, subject), e-mail only when verified on
both sides, usernames that never move, and an audit event for every link and claim change.

Issue 9, defects 1 (pre-hijack by e-mail), 2 (email_verified taken loosely) and 7 (usernames move).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import OIDCIdentity
from core.models import AuditEvent
from orgs.models import Invitation
from rbac.models import UserAccess
from tests.accounts.conftest import SIGNUP_PASSWORD, Browser, sign_up, verified_user
from tests.accounts.provider import Provider
from tests.conftest import PASSWORD

User = get_user_model()


def password_sign_in(username: str, password: str) -> Client:
    client = Client()
    client.post("/login/", {"username": username, "password": password})
    return client


def signed_in_as(client: Client) -> Any:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def test_signing_up_with_someone_elses_address_gives_no_way_into_their_sso_account(
    sso: Provider, db: Any
) -> None:
    # The attacker signs up first with the victim's address and a password of their own...
    attacker = Client()
    started = attacker.post(
        "/signup/",
        {
            "email": "victim@corp.example",
            "name": "Not Victim",
            "password1": SIGNUP_PASSWORD,
            "password2": SIGNUP_PASSWORD,
        },
    )
    # ...but without the PIN e-mailed to that address, no account exists.
    assert started.status_code == 302
    assert not User.objects.filter(email__iexact="victim@corp.example").exists()
    assert "_auth_user_id" not in attacker.session
    wrong = attacker.post(started["Location"], {"pin": "000000"})
    assert wrong.status_code == 400 and not User.objects.filter(username__contains="victim")

    # The victim signs in with single sign-on: a new account, theirs alone.
    sso.set_user("victim-sub", email="victim@corp.example", email_verified=True)
    victim = Browser()
    assert victim.sign_in("victim-sub").status_code == 302
    account = OIDCIdentity.objects.get(subject="victim-sub").user
    assert account.email == "victim@corp.example" and not account.has_usable_password()

    # The attacker's password opens nothing.
    for name in ("victim@corp.example", account.username):
        assert signed_in_as(password_sign_in(name, SIGNUP_PASSWORD)) is None


@pytest.mark.parametrize(
    "verified",
    [
        pytest.param({}, id="missing"),
        pytest.param({"email_verified": "false"}, id="string-false"),
        pytest.param({"email_verified": "true"}, id="string-true"),
        pytest.param({"email_verified": 1}, id="number"),
        pytest.param({"email_verified": False}, id="false"),
    ],
)
def test_only_a_boolean_email_verified_links_a_local_account(
    sso: Provider, db: Any, verified: dict[str, Any]
) -> None:
    local = verified_user("dave", "dave@example.test")
    local.first_name, local.last_name = "Dave", "Local"
    local.save()
    sso.set_user(
        "mallory-sub",
        email="dave@example.test",
        preferred_username="dave",
        given_name="Mallory",
        family_name="Takeover",
        **verified,
    )
    client = Browser()
    assert client.sign_in("mallory-sub").status_code == 302

    linked = OIDCIdentity.objects.get(subject="mallory-sub").user
    assert linked != local and linked.username == "dave-2"
    assert signed_in_as(client.client) == linked
    # The unverified address is not copied onto the new account; the local one is untouched.
    assert linked.email == ""
    local.refresh_from_db()
    assert (local.first_name, local.last_name, local.email) == (
        "Dave",
        "Local",
        "dave@example.test",
    )
    assert local.has_usable_password()
    assert AuditEvent.objects.get(action="account.identity.link").actor == linked
    assert not AuditEvent.objects.filter(actor=local).exists()


def test_a_verified_email_links_a_verified_local_account_and_turns_its_password_off(
    sso: Provider, db: Any
) -> None:
    local = verified_user("carol", "carol@example.test")
    sso.set_user(
        "carol-sub", email="CAROL@example.test", email_verified=True, preferred_username="carol"
    )
    client = Browser()
    assert client.sign_in("carol-sub").status_code == 302

    assert User.objects.filter(username__startswith="carol").count() == 1
    assert OIDCIdentity.objects.get(subject="carol-sub").user == local
    assert signed_in_as(client.client) == local
    local.refresh_from_db()
    assert not local.has_usable_password()  # the provider is the door now
    event = AuditEvent.objects.get(action="account.identity.link")
    assert event.actor == local and event.after["local_password"] == "turned off"
    assert event.after["subject"] == "carol-sub" and event.after["email_verified"] is True


def test_an_address_nobody_confirmed_here_is_not_linked_even_when_the_provider_verified_it(
    sso: Provider, db: Any
) -> None:
    # An account made before addresses were confirmed (no VerifiedEmail): its address is a claim.
    from tests.conftest import make_user

    unconfirmed = make_user("erin")
    sso.set_user("erin-sub", email="erin@example.test", email_verified=True)
    client = Browser()
    assert client.sign_in("erin-sub").status_code == 302
    made = OIDCIdentity.objects.get(subject="erin-sub").user
    assert made != unconfirmed
    assert made.email == ""  # the address belongs to the other account: not copied


def test_an_unverified_email_never_reaches_an_account_linked_by_subject(
    sso: Provider, db: Any
) -> None:
    sso.set_user("frank-sub", email="frank@corp.example", email_verified=True)
    client = Browser()
    client.sign_in("frank-sub")
    user = OIDCIdentity.objects.get(subject="frank-sub").user
    assert user.email == "frank@corp.example"

    sso.set_user("frank-sub", email="boss@corp.example", email_verified=False)
    Browser().sign_in("frank-sub")

    user.refresh_from_db()
    identity = OIDCIdentity.objects.get(subject="frank-sub")
    assert user.email == "frank@corp.example"
    assert (identity.email, identity.email_verified) == ("boss@corp.example", False)
    change = AuditEvent.objects.filter(action="account.identity.claims").latest("pk")
    assert change.after == {"email": "boss@corp.example", "email_verified": False}


def test_an_invitation_confirmed_by_an_operator_skips_an_unverified_copy_of_the_address(
    sso: Provider, cast: dict[str, Any], client_for: Any
) -> None:
    owner = client_for(cast["owner"])
    owner.post("/orgs/acme/members/invite/", {"email": "grace@corp.example", "tier": "viewer"})
    invitation = Invitation.objects.get()
    sso.set_user("impostor-sub", email="grace@corp.example", email_verified=False)
    Browser().sign_in("impostor-sub")
    impostor = OIDCIdentity.objects.get(subject="impostor-sub").user

    url = f"/orgs/acme/members/invitations/{invitation.pk}/confirm/"
    response = client_for(cast["sovereign_operator"]).post(url)

    assert response.status_code == 400
    assert not UserAccess.objects.filter(user=impostor).exists()
    invitation.refresh_from_db()
    assert invitation.state == "pending"


def test_a_username_stays_with_its_subject_after_a_rename(sso: Provider, db: Any) -> None:
    sso.set_user("a-sub", email="a@corp.example", email_verified=True, preferred_username="alice")
    Browser().sign_in("a-sub")
    first = OIDCIdentity.objects.get(subject="a-sub").user
    assert first.username == "alice"

    # Alice is renamed at the provider; someone else is then given her old name there.
    sso.set_user(
        "a-sub", email="a@corp.example", email_verified=True, preferred_username="alice-old"
    )
    Browser().sign_in("a-sub")
    sso.set_user("b-sub", email="b@corp.example", email_verified=True, preferred_username="alice")
    Browser().sign_in("b-sub")

    first.refresh_from_db()
    second = OIDCIdentity.objects.get(subject="b-sub").user
    assert first.username == "alice"  # anything naming "alice" still means the first person
    assert second.username == "alice-2"
    assert User.objects.get(username="alice") == first


def test_linked_identities_are_on_the_account_page_and_can_be_unlinked(
    sso: Provider, db: Any
) -> None:
    user = verified_user("hana", "hana@example.test")
    sso.set_user("hana-sub", email="hana@example.test", email_verified=True, groups=["ops"])
    browser = Browser()
    browser.sign_in("hana-sub")
    page = browser.client.get("/account/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "hana-sub" in text and sso.url in text and "ops" in text
    identity = OIDCIdentity.objects.get(subject="hana-sub")

    # The account lost its password when it was linked: unlinking would lock it out.
    refused = browser.client.post(f"/account/identities/{identity.pk}/unlink/", follow=True)
    assert "Set a password first" in refused.content.decode()
    assert OIDCIdentity.objects.filter(pk=identity.pk).exists()

    # Someone else's identity does not exist for them.
    other = Client()
    other.force_login(verified_user("ivan", "ivan@example.test"))
    assert other.post(f"/account/identities/{identity.pk}/unlink/").status_code == 404

    user.set_password(PASSWORD)
    user.save()
    browser.client.force_login(user)
    done = browser.client.post(f"/account/identities/{identity.pk}/unlink/")
    assert done.status_code == 302
    assert not OIDCIdentity.objects.filter(pk=identity.pk).exists()
    event = AuditEvent.objects.get(action="account.identity.unlink")
    assert event.actor == user and event.before["subject"] == "hana-sub"


def test_local_sign_up_can_be_switched_off(settings: Any, sovereign: Any) -> None:
    settings.LOCAL_SIGNUP_ENABLED = False
    client = Client()
    assert client.get("/signup/").status_code == 404
    assert client.post("/signup/", {"email": "x@example.test", "name": "X"}).status_code == 404
    assert b"Create an account" not in client.get("/login/").content
    assert not User.objects.exists()


def test_a_full_pin_sign_up_keeps_next(sovereign: Any) -> None:
    client = Client()
    response = sign_up(client, "Zoe@Example.test", next_url="/orgs/")
    assert response.status_code == 302 and response["Location"] == "/orgs/"
    assert signed_in_as(client).email == "zoe@example.test"
