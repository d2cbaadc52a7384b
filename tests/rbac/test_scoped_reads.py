"""Issue 10 §2: a grant scoped below its Organization reads only what its scope matches.

The cast's developer is scoped to `openova.io/env-type=dev` (the developer tier always is); a
dev-scoped *admin* is made here. Neither may read the Organization's audit of prod, its prod
Environments (in lists too), billing, members, the access matrix or the grants."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import AuditEvent
from orgs import services as org_services
from orgs.models import Environment
from tests.conftest import grant, make_user

pytestmark = pytest.mark.django_db

DEV_SCOPE = [
    {"key": "openova.io/organization", "value": "acme"},
    {"key": "openova.io/env-type", "value": "dev"},
]


@pytest.fixture
def dev_admin(cast: dict[str, Any]) -> Any:
    user = make_user("dev_admin")
    grant(user, "admin", DEV_SCOPE)
    return user


def _audit_targets(events: list[dict[str, Any]]) -> set[str]:
    return {e["target_repr"] for e in events}


@pytest.mark.parametrize("who", ["developer", "dev_admin"])
def test_scoped_grant_reads_only_its_scope(who, cast, dev_admin, client_for, on_commit):
    user = dev_admin if who == "dev_admin" else cast[who]
    # the cast's setup recorded the creation of acme-prod and acme-dev; add an org-level event
    with on_commit():
        org_services.rename_organization(by=cast["owner"], org=cast["acme"], display_name="Acme 2")
    envs = {e.name: e for e in Environment.objects.filter(organization__slug="acme")}
    assert AuditEvent.objects.filter(org_slug="acme").count() >= 2
    client = client_for(user)

    # the audit trail: only events about what the scope matches (acme-dev), page, CSV and API
    api = client.get("/api/v1/orgs/acme/audit")
    assert api.status_code == 200
    targets = _audit_targets(api.json())
    assert "acme-prod" not in targets and "acme" not in targets, targets
    assert "acme-dev" in targets, targets
    page = client.get("/orgs/acme/audit/")
    assert page.status_code == 200 and b"acme-prod" not in page.content
    csv = client.get("/orgs/acme/audit/?format=csv")
    body = b"".join(csv.streaming_content) if csv.streaming else csv.content
    assert csv.status_code == 200 and b"acme-prod" not in body and b"acme-dev" in body

    # Environment lists: the Organization is visible, its prod Environment is not
    orgs = client.get("/api/v1/orgs/").json()
    assert [o["slug"] for o in orgs] == ["acme"]
    assert [e["name"] for e in orgs[0]["environments"]] == ["acme-dev"]
    detail = client.get("/api/v1/orgs/acme/").json()
    assert [e["name"] for e in detail["environments"]] == ["acme-dev"]
    listing = client.get("/orgs/")
    assert listing.status_code == 200 and b"acme-prod" not in listing.content
    assert envs["acme-prod"].name.encode() not in client.get("/orgs/acme/").content

    # Organization-wide data: refused (403: the Organization itself is visible)
    for url in ("/billing/acme/", "/orgs/acme/members/", "/orgs/acme/members/matrix/"):
        assert client.get(url).status_code == 403, url
    grants = client.get("/api/v1/rbac/grants/?org=acme")
    assert grants.status_code == 200 and grants.json() == []


def test_org_wide_grants_still_read_everything(cast, client_for):
    viewer = client_for(cast["viewer"])
    targets = _audit_targets(viewer.get("/api/v1/orgs/acme/audit").json())
    assert {"acme-prod", "acme-dev", "acme"} <= targets
    for url in ("/billing/acme/", "/orgs/acme/members/", "/orgs/acme/members/matrix/"):
        assert viewer.get(url).status_code == 200, url
    assert len(viewer.get("/api/v1/rbac/grants/?org=acme").json()) >= 5
