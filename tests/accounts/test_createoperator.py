"""`manage.py createoperator`: a local operator account with one global grant."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from core.models import AuditEvent
from rbac import access
from rbac.models import UserAccess


def run(*args: str) -> str:
    out = StringIO()
    call_command("createoperator", *args, stdout=out)
    return out.getvalue()


def test_creates_an_operator_with_a_global_owner_grant(db: Any) -> None:
    output = run("root", "--email", "root@demo.local", "--password", "first-password")

    assert "Created operator root (global owner: created)" in output
    user = get_user_model().objects.get(username="root")
    assert user.email == "root@demo.local" and user.is_staff
    assert user.check_password("first-password")
    grant = UserAccess.objects.get(user=user)
    assert (grant.tier, grant.scopes) == ("owner", [{"key": "*", "value": "*"}])
    assert access.is_global(user, "audit.read")
    assert AuditEvent.objects.filter(action="rbac.assign", target_id=str(grant.pk)).count() == 1
    client = Client()
    assert (
        client.post("/login/", {"username": "root", "password": "first-password"}).status_code
        == 302
    )
    assert client.get("/audit/").status_code == 200


def test_rerun_updates_the_account_without_a_second_grant(db: Any) -> None:
    run("root", "--password", "first-password")
    output = run("root", "--email", "new@demo.local", "--password", "second-password")

    assert "Updated operator root (global owner: no-op)" in output
    user = get_user_model().objects.get(username="root")
    assert user.email == "new@demo.local"
    assert user.check_password("second-password")
    assert UserAccess.objects.filter(user=user).count() == 1
    assert AuditEvent.objects.filter(action="rbac.assign").count() == 1

    assert "(global admin: updated)" in run(
        "root", "--tier", "admin", "--password", "third-password"
    )
    assert list(UserAccess.objects.filter(user=user).values_list("tier", flat=True)) == ["admin"]


def test_password_from_the_environment(db: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("CATALYST_OPERATOR_PASSWORD", "from-the-env-123")
    run("envop")
    assert get_user_model().objects.get(username="envop").check_password("from-the-env-123")


@pytest.mark.parametrize("password", ["short", ""])
def test_short_password_is_refused(db: Any, monkeypatch: Any, password: str) -> None:
    monkeypatch.delenv("CATALYST_OPERATOR_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="at least 8 characters"):
        run("root", "--password", password)
    assert not get_user_model().objects.filter(username="root").exists()
    assert not UserAccess.objects.exists()


def test_short_password_leaves_an_existing_operator_alone(db: Any) -> None:
    run("root", "--password", "first-password")
    with pytest.raises(CommandError):
        run("root", "--password", "1234567")
    assert get_user_model().objects.get(username="root").check_password("first-password")
