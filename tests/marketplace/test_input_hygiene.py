"""Issue 10 §5: control characters are refused in names, patterns are anchored at the very end
(no trailing newline), and invitation mail goes through the outbox (a mail failure never turns a
committed invitation into a 500)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from core import outbox
from core.models import OutboxItem
from orgs import services
from orgs.models import Invitation, Organization

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["Acme\nBcc: evil@example.test", "Acme\x00", "Acme\x1b[31m"])
def test_control_characters_are_refused_in_display_names(name, cast, client_for):
    owner = client_for(cast["owner"])
    patched = owner.patch(
        "/api/v1/orgs/acme/", json.dumps({"display_name": name}), content_type="application/json"
    )
    assert patched.status_code == 400 and "display_name" in patched.json()["errors"]
    created = owner.post(
        "/api/v1/orgs/",
        json.dumps({"slug": "newco", "display_name": name}),
        content_type="application/json",
    )
    assert created.status_code == 400 and "display_name" in created.json()["errors"]
    page = owner.post("/orgs/acme/edit/", {"display_name": name})
    assert page.status_code == 400
    assert Organization.objects.get(slug="acme").display_name == "Acme"
    assert not Organization.objects.filter(slug="newco").exists()


@pytest.mark.parametrize("slug", ["newco\n", "new\nco"])
def test_slugs_with_a_newline_are_refused_by_the_service(slug, cast):
    with pytest.raises(ValidationError):
        services.create_organization(by=cast["owner"], slug=slug, display_name="New")
    assert not Organization.objects.filter(slug__startswith="new").exists()


def test_invitation_mail_goes_through_the_outbox(cast, client_for, on_commit, settings):
    """A mail server that fails leaves the invitation committed and the mail queued for retry."""
    settings.EMAIL_BACKEND = "tests.marketplace.test_input_hygiene.FailingBackend"
    with on_commit():
        response = client_for(cast["admin"]).post(
            "/orgs/acme/members/invite/", {"email": "new@example.test", "tier": "viewer"}
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get(email="new@example.test")
    item = OutboxItem.objects.get(task_name="orgs.tasks.send_invitation_task")
    assert item.done_at is None and "mail server down" in item.last_error
    assert str(invitation.pk) in item.key and "invitations/" not in item.key  # no token stored

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    OutboxItem.objects.filter(pk=item.pk).update(available_at=item.created_at)
    outbox.sweep()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@example.test"]
    token = mail.outbox[0].body.split("/invitations/")[1].split("/")[0]
    newcomer = _user("new")
    accepted = client_for(newcomer).post(f"/invitations/{token}/")
    assert accepted.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "accepted"


def _user(name: str) -> Any:
    from tests.conftest import make_user

    user = make_user(name)
    user.email = f"{name}@example.test"
    user.save()
    return user


class FailingBackend:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send_messages(self, messages: Any) -> int:
        raise ConnectionRefusedError("mail server down")


@pytest.mark.parametrize(
    ("pattern", "value", "ok"),
    [
        ("^[a-z]+$", "abc", True),
        ("^[a-z]+$", "abc\n", False),
        ("^[0-9]+(Mi|Gi)$", "10Gi\n", False),
        ("^[$a-z]+$", "$ab", True),
        (r"^a\$$", "a$", True),
        ("ab", "xaby\n", True),
    ],
)
def test_schema_patterns_end_at_the_end(pattern, value, ok):
    from marketplace import schema_form

    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": pattern}}}
    if ok:
        assert schema_form.validate(schema, {"v": value})["v"] == value
    else:
        with pytest.raises(ValidationError) as refused:
            schema_form.validate(schema, {"v": value})
        assert "values.v" in refused.value.message_dict


def test_install_refuses_a_value_with_a_trailing_newline(catalog, cast, client_for):
    response = client_for(cast["admin"]).post(
        "/api/v1/orgs/acme/environments/acme-prod/applications/",
        json.dumps({"name": "pgdb", "blueprint": "bp-cnpg", "values": {"database": "app\n"}}),
        content_type="application/json",
    )
    assert response.status_code == 400 and "values.database" in response.json()["errors"]
