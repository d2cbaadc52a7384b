"""Tenant isolation as a matrix: the cast × every page and endpoint (data in tests/rbac/matrix.py).

Each case asserts the exact status code; a refused request (4xx) must leave the database, the
outbox, the e-mail outbox and Git exactly as they were, even after after-commit work has run.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import create_api_token
from core import outbox
from core.models import AuditEvent, OutboxItem
from orgs.members import hash_token
from orgs.models import Environment, Invitation, Organization
from rbac.models import UserAccess
from tests.conftest import grant, make_user, reset_cache
from tests.gitutil import commits

from .matrix import DEV_ADMIN_SCOPE, ROLES, Case, cases

pytestmark = pytest.mark.django_db
TOKEN = "matrix-invitation-token"
VOUCHER_CODE = "MATRIX-VOUCHER-2026"
# tables a refused request must not touch, besides those `state()` lists by hand; the catalog's
# tables are left out (only a catalog sync writes them, and they are large)
WATCHED_APPS = ("billing", "marketplace")
UNWATCHED = {"marketplace.catalogsource", "marketplace.catalogsyncerror", "marketplace.blueprint"}
UNWATCHED |= {"marketplace.blueprintversion"}


_CATALOG_ROWS: list[tuple[Any, list[dict[str, Any]]]] = []


def setup_catalog() -> None:
    """The starter catalog: synced by the first case that needs it, then re-inserted from the rows
    kept in memory (a sync parses and validates every file: three times slower)."""
    from marketplace import loader
    from marketplace.models import Blueprint, BlueprintVersion, CatalogSource

    if _CATALOG_ROWS:
        for model, rows in _CATALOG_ROWS:
            model.objects.bulk_create(model(**row) for row in rows)
    else:
        source = CatalogSource.objects.create(
            name=loader.PUBLIC_SOURCE, kind="directory", location=str(settings.CATALOG_DIR)
        )
        assert loader.sync_source(source)["errors"] == 0
        _CATALOG_ROWS.extend(
            (model, list(model.objects.values()))
            for model in (CatalogSource, Blueprint, BlueprintVersion)
        )
    # bp-secret: a copy of bp-valkey published privately by globex (only globex may see it)
    blueprint = Blueprint.objects.get(name="bp-valkey")
    rows = list(blueprint.versions.all())
    blueprint.pk = None
    blueprint.name = "bp-secret"
    blueprint.visibility = "private"
    blueprint.owner = Organization.objects.get(slug="globex")
    blueprint.save()
    for row in rows:
        row.pk = None
        row.blueprint = blueprint
        row.save()


def setup_apps(cast: dict[str, Any]) -> dict[str, Any]:
    """bp-valkey installed as `cache` in acme-prod, acme-dev and globex-prod; an owner's plan."""
    from marketplace import services
    from marketplace.models import BlueprintVersion

    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey")
    for env_name, by in [
        ("acme-prod", "owner"),
        ("acme-dev", "owner"),
        ("globex-prod", "member_b"),
    ]:
        env = Environment.objects.get(name=env_name)
        services.install(by=cast[by], env=env, version=version, name="cache", values={})
    plan = services.make_plan(
        by=cast["owner"],
        env=Environment.objects.get(name="acme-prod"),
        version=version,
        name="web",
        values={},
    )
    return {"install_plan": plan.pk}


def setup_billing(cast: dict[str, Any]) -> dict[str, Any]:
    """An active voucher (not yet redeemed), an open quote of acme for plan L, and acme's order
    for plan M, awaiting payment."""
    from billing import quotes, vouchers
    from tests.billing.helpers import order_plan

    voucher = vouchers.issue_vouchers(
        by=cast["sovereign_operator"],
        terms=vouchers.VoucherTerms(credit_minor=5_000, max_redemptions=10),
        code=VOUCHER_CODE,
    )[0]
    quote = quotes.save(quotes.for_plan_change(by=cast["owner"], org=cast["acme"], plan_code="l"))
    order = order_plan(by=cast["owner"], org=cast["acme"], plan_code="m")
    assert order is not None and order.status == "awaiting_payment"
    return {
        "voucher": voucher.pk,
        "voucher_code": voucher.code,
        "order": order.pk,
        "invoice": order.invoice.pk,
        "quote": quotes.token(quote),
    }


@pytest.fixture
def world(request: Any, monkeypatch: Any) -> dict[str, Any]:
    """The cast (plus the case's `setup`), created without running the Git deliveries (fast; Git
    starts empty)."""
    case: Case = request.node.callspec.params["case"]
    reset_cache()  # the BSS rate limits count per address: every case starts afresh
    monkeypatch.setattr(outbox, "send", lambda item_id, task_name: True)
    cast = dict(request.getfixturevalue("cast"))
    cast["dev_admin"] = make_user("dev_admin")
    grant(cast["dev_admin"], "admin", DEV_ADMIN_SCOPE)
    extra: dict[str, Any] = {}
    if {"catalog", "apps"} & set(case.setup):
        setup_catalog()
    if "apps" in case.setup:
        extra.update(setup_apps(cast))
    if "billing" in case.setup:
        extra.update(setup_billing(cast))
    monkeypatch.undo()
    invitation = Invitation.objects.create(
        organization=cast["acme"],
        email=cast["outsider"].email,
        tier="viewer",
        scopes=[{"key": "openova.io/organization", "value": "acme"}],
        token_hash=hash_token(TOKEN),
        expires_at=timezone.now() + timedelta(hours=1),
        invited_by=cast["owner"],
    )
    context = {
        "viewer_grant": UserAccess.objects.get(user=cast["viewer"]).pk,
        "viewer_id": cast["viewer"].pk,
        "admin_id": cast["admin"].pk,
        "invitation": invitation.pk,
        "token": TOKEN,
        "owner_api_token": create_api_token(user=cast["owner"], name="matrix", days=5)[0].pk,
        **extra,
    }
    return {"cast": cast, "context": context}


def state() -> dict[str, Any]:
    return {
        "orgs": list(
            Organization.objects.order_by("pk").values_list("slug", "display_name", "state")
        ),
        "envs": list(Environment.objects.order_by("pk").values_list("name", flat=True)),
        "grants": list(
            UserAccess.objects.order_by("pk").values_list(
                "pk", "user_id", "group", "tier", "scopes", "expires_at"
            )
        ),
        "invitations": list(
            Invitation.objects.order_by("pk").values_list("pk", "state", "token_hash", "expires_at")
        ),
        "audit": AuditEvent.objects.count(),
        "outbox": OutboxItem.objects.count(),
        "tokens": list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        "mail": len(mail.outbox),
        "git": commits(),
        **{
            model._meta.label_lower: list(model.objects.order_by("pk").values_list())
            for app in WATCHED_APPS
            for model in apps.get_app_config(app).get_models()
            if model._meta.label_lower not in UNWATCHED
        },
    }


def fill(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format(**context)
    if isinstance(value, dict):
        return {k: fill(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, context) for v in value]
    return value


def send(client: Client, case: Case, context: dict[str, Any]) -> Any:
    url = fill(case.url, context)
    data = fill(case.data, context)
    method = getattr(client, case.method.lower())
    if case.api and case.method != "GET":
        return method(url, json.dumps(data), content_type="application/json")
    return method(url, data) if data or case.method == "POST" else method(url)


PARAMS = [
    pytest.param(case, role, id=f"{case.name} | {role}") for case in cases() for role in ROLES
]


@pytest.mark.parametrize(("case", "role"), PARAMS)
def test_matrix(world, client_for, on_commit, case: Case, role: str):
    user = None if role == "anonymous" else world["cast"][role]
    client = client_for(user)
    before = state()
    with on_commit():
        response = send(client, case, world["context"])
    expected = case.expect[role]
    assert response.status_code == expected, (
        f"{case.method} {case.url} as {role}: {response.status_code}, expected {expected}"
    )
    if expected == 302 and role == "anonymous":
        assert response["Location"].startswith(case.anonymous_to)
    if expected >= 400:
        assert state() == before, f"refused {case.method} {case.url} as {role} changed something"
