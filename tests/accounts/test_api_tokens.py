"""Personal API tokens: shown once, hashed at rest, revocable, expiring, never logged."""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services
from accounts.models import ApiToken
from core.models import AuditEvent
from tests.conftest import make_user

TOKEN = re.compile(r"cpt_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}")


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def rows_containing(text: str) -> list[str]:
    """Every stored row, of every model, whose values mention `text`."""
    found = []
    for model in apps.get_models():
        for row in model._default_manager.values():
            if text in repr(row):
                found.append(f"{model._meta.label}#{row.get('id')}")
    return found


@pytest.fixture
def users(db: Any) -> dict[str, Any]:
    """The cast without the organizations (token tests do not need Git)."""
    names = ("owner", "developer", "viewer", "member_b", "sovereign_operator")
    return {name: make_user(name) for name in names}


def mint(user: Any, name: str = "ci", days: int = 30) -> tuple[ApiToken, str]:
    return services.create_api_token(user=user, name=name, days=days)


def test_ui_shows_the_secret_once_and_stores_only_its_hash(
    users: dict[str, Any], client_for: Any
) -> None:
    client = client_for(users["owner"])
    response = client.post("/account/tokens/", {"name": "CI pipeline", "days": 30})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    raw = TOKEN.search(response.content.decode()).group(0)
    token = ApiToken.objects.get(user=users["owner"], name="CI pipeline")
    assert raw.startswith(f"cpt_{token.lookup}_")
    assert token.hashed == hashlib.sha256(raw.encode()).hexdigest()
    assert token.expires_at - timezone.now() == pytest.approx(
        timedelta(days=30), abs=timedelta(seconds=60)
    )
    secret = raw.split("_", 2)[2]
    assert rows_containing(secret) == []

    again = client.get("/account/tokens/").content.decode()
    assert secret not in again
    assert f"cpt_{token.lookup}_…" in again
    event = AuditEvent.objects.get(action="account.token.create", target_id=str(token.pk))
    assert event.actor == users["owner"]
    assert secret not in repr(event.after)


def test_the_api_cap_is_the_setting_at_request_time(
    users: dict[str, Any], client_for: Any, settings: Any
) -> None:
    """The bound used to be read when the module was imported: a raised cap was ignored, and a
    test lowering it made later requests fail depending on test order."""
    importlib.import_module("accounts.api")  # loaded before the setting changes, as in a server
    settings.API_TOKEN_MAX_DAYS = 400
    client = client_for(users["owner"])
    response = client.post(
        "/api/v1/tokens/", {"name": "long", "days": 390}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    settings.API_TOKEN_MAX_DAYS = 5
    refused = client.post(
        "/api/v1/tokens/", {"name": "short", "days": 6}, content_type="application/json"
    )
    assert refused.status_code == 400
    assert refused.json() == {"errors": {"days": ["Choose between 1 and 5 days."]}}
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["long"]


def test_ui_refuses_an_expiry_past_the_cap(
    users: dict[str, Any], client_for: Any, settings: Any
) -> None:
    settings.API_TOKEN_MAX_DAYS = 30
    response = client_for(users["owner"]).post("/account/tokens/", {"name": "x", "days": 31})
    assert response.status_code == 400
    assert "less than or equal to 30" in response.content.decode()
    assert not ApiToken.objects.exists()
    assert client_for(None).get("/account/tokens/").status_code == 302


def test_bearer_token_authenticates_the_api_and_records_last_use(
    cast: dict[str, Any],
) -> None:
    token, raw = mint(cast["owner"])
    assert token.last_used_at is None
    client = Client()

    response = client.get("/api/v1/orgs/", **bearer(raw))

    assert response.status_code == 200
    assert [o["slug"] for o in response.json()] == ["acme"]
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert timezone.now() - token.last_used_at < timedelta(seconds=5)
    # The token acts with its own user's access only.
    _, outsider_raw = mint(cast["outsider"])
    assert client.get("/api/v1/orgs/", **bearer(outsider_raw)).json() == []
    assert client.get("/api/v1/orgs/acme/", **bearer(outsider_raw)).status_code == 404


@pytest.mark.parametrize(
    "spoil",
    ["revoked", "expired", "wrong-secret", "malformed", "inactive-user"],
)
def test_unusable_tokens_get_401(users: dict[str, Any], spoil: str) -> None:
    token, raw = mint(users["owner"])
    if spoil == "revoked":
        services.revoke_api_token(user=users["owner"], token_id=token.pk)
    elif spoil == "expired":
        ApiToken.objects.filter(pk=token.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    elif spoil == "wrong-secret":
        raw = f"cpt_{token.lookup}_{'x' * 43}"
    elif spoil == "malformed":
        raw = raw.replace("cpt_", "cpx_")
    elif spoil == "inactive-user":
        users["owner"].is_active = False
        users["owner"].save()

    response = Client().get("/api/v1/orgs/", **bearer(raw))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"errors": {"detail": ["Invalid, expired or revoked API token."]}}
    token.refresh_from_db()
    assert token.last_used_at is None


def test_no_credentials_get_401() -> None:
    assert Client().get("/api/v1/orgs/").status_code == 401


def test_api_creates_a_token_whose_secret_is_returned_once(
    users: dict[str, Any], client_for: Any
) -> None:
    client = client_for(users["developer"])

    response = client.post(
        "/api/v1/tokens/", {"name": "deploy bot", "days": 7}, content_type="application/json"
    )

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert TOKEN.fullmatch(body["token"])
    assert body["state"] == "active" and body["name"] == "deploy bot"
    token = ApiToken.objects.get(pk=body["id"])
    assert token.user == users["developer"]
    assert token.matches(body["token"])
    assert body["token_prefix"] == f"cpt_{token.lookup}_…"
    assert (
        AuditEvent.objects.filter(action="account.token.create", actor=users["developer"]).count()
        == 1
    )

    listed = client.get("/api/v1/tokens/")
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()] == [token.pk]
    assert "token" not in listed.json()[0]
    assert body["token"].split("_", 2)[2] not in listed.content.decode()
    # The new token works on the API straight away.
    assert Client().get("/api/v1/tokens/", **bearer(body["token"])).status_code == 200


def test_api_lists_only_my_tokens(users: dict[str, Any], client_for: Any) -> None:
    mine, _ = mint(users["viewer"], "mine")
    mint(users["owner"], "theirs")
    response = client_for(users["viewer"]).get("/api/v1/tokens/")
    assert [t["name"] for t in response.json()] == ["mine"]
    assert response.json()[0]["id"] == mine.pk


def test_api_expiry_defaults_and_is_capped(
    users: dict[str, Any], client_for: Any, settings: Any
) -> None:
    settings.API_TOKEN_DEFAULT_DAYS = 10
    settings.API_TOKEN_MAX_DAYS = 20
    client = client_for(users["owner"])

    default = client.post("/api/v1/tokens/", {"name": "d"}, content_type="application/json")
    assert default.status_code == 201
    expires = ApiToken.objects.get(pk=default.json()["id"]).expires_at
    assert expires - timezone.now() == pytest.approx(timedelta(days=10), abs=timedelta(seconds=60))

    too_long = client.post(
        "/api/v1/tokens/", {"name": "l", "days": 21}, content_type="application/json"
    )
    assert too_long.status_code == 400
    assert too_long.json() == {"errors": {"days": ["Choose between 1 and 20 days."]}}
    assert ApiToken.objects.count() == 1


def test_a_token_cannot_mint_a_longer_lived_token(users: dict[str, Any]) -> None:
    parent, raw = mint(users["owner"], days=2)
    response = Client().post(
        "/api/v1/tokens/",
        {"name": "child", "days": 300},
        content_type="application/json",
        **bearer(raw),
    )
    assert response.status_code == 201
    child = ApiToken.objects.get(pk=response.json()["id"])
    assert child.expires_at == parent.expires_at


def test_a_token_minted_by_a_token_dies_with_its_parent(
    users: dict[str, Any], client_for: Any
) -> None:
    parent, raw = mint(users["owner"], name="ci")

    def child_of(secret: str, name: str) -> tuple[int, str]:
        made = Client().post(
            "/api/v1/tokens/", {"name": name}, content_type="application/json", **bearer(secret)
        )
        assert made.status_code == 201, made.content
        return made.json()["id"], made.json()["token"]

    child_id, child_raw = child_of(raw, "job")
    grandchild_id, grandchild_raw = child_of(child_raw, "step")
    assert Client().get("/api/v1/orgs/", **bearer(grandchild_raw)).status_code == 200

    # The list shows the chain.
    listed = {t["id"]: t for t in Client().get("/api/v1/tokens/", **bearer(raw)).json()}
    assert listed[child_id]["minted_by"] == parent.pk
    assert listed[grandchild_id]["minted_by"] == child_id
    page = client_for(users["owner"]).get("/account/tokens/").content.decode()
    assert f"{parent.display}</code> ci" in page

    # Revoking the parent on the page revokes the tokens minted from it.
    revoked = client_for(users["owner"]).post(f"/account/tokens/{parent.pk}/revoke/")
    assert revoked.status_code == 302
    for secret in (raw, child_raw, grandchild_raw):
        assert Client().get("/api/v1/orgs/", **bearer(secret)).status_code == 401
    assert set(ApiToken.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True)) == {
        parent.pk,
        child_id,
        grandchild_id,
    }
    events = AuditEvent.objects.filter(action="account.token.revoke")
    assert events.count() == 3
    assert {e.after["with_parent"] for e in events} == {False, True}


def test_a_child_stops_even_if_its_parent_is_revoked_behind_the_services_back(
    users: dict[str, Any],
) -> None:
    parent, raw = mint(users["owner"])
    made = Client().post(
        "/api/v1/tokens/", {"name": "job"}, content_type="application/json", **bearer(raw)
    )
    ApiToken.objects.filter(pk=parent.pk).update(revoked_at=timezone.now())
    assert Client().get("/api/v1/orgs/", **bearer(made.json()["token"])).status_code == 401


def test_api_revoke_is_audited_and_the_token_stops_working(
    users: dict[str, Any], client_for: Any
) -> None:
    token, raw = mint(users["owner"])
    client = client_for(users["owner"])

    response = client.post(f"/api/v1/tokens/{token.pk}/revoke")

    assert response.status_code == 200
    assert response.json()["state"] == "revoked"
    token.refresh_from_db()
    assert token.revoked_at is not None
    event = AuditEvent.objects.get(action="account.token.revoke", target_id=str(token.pk))
    assert event.actor == users["owner"]
    assert event.before["revoked_at"] is None and event.after["revoked_at"]
    assert Client().get("/api/v1/orgs/", **bearer(raw)).status_code == 401
    # Revoking twice is a no-op, not a second event.
    assert client.post(f"/api/v1/tokens/{token.pk}/revoke").status_code == 200
    assert AuditEvent.objects.filter(action="account.token.revoke").count() == 1


def test_a_token_can_revoke_itself(users: dict[str, Any]) -> None:
    token, raw = mint(users["owner"])
    assert Client().post(f"/api/v1/tokens/{token.pk}/revoke", **bearer(raw)).status_code == 200
    assert Client().get("/api/v1/orgs/", **bearer(raw)).status_code == 401


def test_another_user_cannot_revoke_my_token(users: dict[str, Any], client_for: Any) -> None:
    token, raw = mint(users["owner"])
    _, intruder_raw = mint(users["sovereign_operator"])

    api = Client().post(f"/api/v1/tokens/{token.pk}/revoke", **bearer(intruder_raw))
    ui = client_for(users["member_b"]).post(f"/account/tokens/{token.pk}/revoke/")

    assert api.status_code == 404
    assert ui.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuditEvent.objects.filter(action="account.token.revoke").exists()
    assert Client().get("/api/v1/orgs/", **bearer(raw)).status_code == 200


def test_ui_revoke(users: dict[str, Any], client_for: Any) -> None:
    token, _ = mint(users["owner"], "old")
    client = client_for(users["owner"])
    response = client.post(f"/account/tokens/{token.pk}/revoke/", follow=True)
    assert response.redirect_chain == [("/account/tokens/", 302)]
    assert "Token “old” revoked." in response.content.decode()
    token.refresh_from_db()
    assert token.state == "revoked"
    assert AuditEvent.objects.filter(action="account.token.revoke", actor=users["owner"]).exists()


def test_tokens_never_appear_in_logs(users: dict[str, Any], client_for: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    session = client_for(users["owner"])

    with CaptureQueriesContext(connection):  # SQL is logged, with its parameters
        page = session.post("/account/tokens/", {"name": "ui", "days": 5}).content.decode()
        ui_raw = TOKEN.search(page).group(0)
        api_raw = session.post(
            "/api/v1/tokens/", {"name": "api"}, content_type="application/json"
        ).json()["token"]
        anon = Client()
        assert anon.get("/api/v1/orgs/", **bearer(ui_raw)).status_code == 200
        assert (
            anon.get(
                "/api/v1/orgs/", **bearer(api_raw[:-1] + ("B" if api_raw.endswith("A") else "A"))
            ).status_code
            == 401
        )
        services.revoke_api_token(user=users["owner"], token_id=ApiToken.objects.get(name="ui").pk)
        assert anon.get("/api/v1/orgs/", **bearer(ui_raw)).status_code == 401

    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "INSERT INTO" in logged  # the SQL log was on
    assert "API token refused" in logged
    for raw in (ui_raw, api_raw):
        assert raw.split("_", 2)[2] not in logged
