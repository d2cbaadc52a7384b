"""Every API list answers a bounded page and names the next one (`Link: <…>; rel="next"`), and a
page costs the same number of queries however many rows there are (core/pagination.py).

Each test fills a list with more than a page of rows, walks it page by page through the Link
headers, and checks: pages of at most `size`, every row exactly once in the list's order, the
same query count on the first page with N rows and with 3N, and that another tenant's rows and a
forged cursor leak nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiToken
from core.models import AuditEvent
from marketplace.models import Application, BlueprintVersion, CatalogProposal
from orgs.models import Environment, Organization
from rbac.models import UserAccess
from tests.conftest import make_tokens
from tests.marketplace.conftest import catalog, publish

pytestmark = pytest.mark.django_db
__all__ = ["catalog", "publish"]

LINK = re.compile(r'<([^>]+)>; rel="next"')


def walk(client: Any, url: str) -> tuple[list[list[Any]], list[int]]:
    """The pages of a list (following Link rel=next) and the queries each cost."""
    pages, costs = [], []
    while url:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert isinstance(body, list)
        pages.append(body)
        costs.append(len(queries))
        found = LINK.fullmatch(response.headers.get("Link", ""))
        if found:
            parts = urlsplit(found.group(1))
            assert parts.netloc == "testserver"
            url = f"{parts.path}?{parts.query}"
        else:
            url = ""
    return pages, costs


def first_page_cost(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def check_paged(
    client: Any,
    url: str,
    *,
    size: int,
    key: Callable[[dict[str, Any]], Any],
    expected: list[Any],
    more: Callable[[], None],
) -> None:
    sep = "&" if "?" in url else "?"
    pages, costs = walk(client, f"{url}{sep}size={size}")
    assert len(pages) > 1, "more than a page of rows answers one bounded page with a next link"
    assert all(0 < len(page) <= size for page in pages)
    assert len(pages[0]) == size
    seen = [key(row) for page in pages for row in page]
    assert seen == expected
    # cost per page: the same for every page, and the same once there are three times the rows
    assert max(costs) - min(costs) <= 1, costs
    before = first_page_cost(client, f"{url}{sep}size={size}")
    more()
    assert first_page_cost(client, f"{url}{sep}size={size}") == before
    # a forged cursor shows the first page, not an error
    first = client.get(f"{url}{sep}size={size}").json()
    forged = client.get(f"{url}{sep}size={size}&after=forged")
    assert forged.status_code == 200 and forged.json() == first


def _orgs(prefix: str, count: int) -> None:
    Organization.objects.bulk_create(
        Organization(slug=f"{prefix}-{i:04d}", display_name=f"{prefix} {i}") for i in range(count)
    )
    for org in Organization.objects.filter(slug__startswith=f"{prefix}-"):
        Environment.objects.create(organization=org, name=f"{org.slug}-prod", env_type="prod")


def test_organizations(cast, client_for):
    _orgs("many", 60)
    client = client_for(cast["sovereign_operator"])
    expected = sorted(Organization.objects.values_list("slug", flat=True))
    check_paged(
        client,
        "/api/v1/orgs/",
        size=25,
        key=lambda row: row["slug"],
        expected=expected,
        more=lambda: _orgs("more", 120),
    )
    # a customer sees their own only
    pages, _ = walk(client_for(cast["owner"]), "/api/v1/orgs/?size=1")
    assert [row["slug"] for page in pages for row in page] == ["acme"]


def _grants(org: str, count: int) -> None:
    from tests.conftest import make_user

    users = [make_user(f"{org}-u{i:03d}") for i in range(count)]
    scopes = [{"key": "openova.io/organization", "value": org}]
    UserAccess.objects.bulk_create(
        UserAccess(user=u, tier="viewer", scopes=scopes, org_slug=org) for u in users
    )


def test_grants(cast, client_for):
    _grants("acme", 40)
    client = client_for(cast["sovereign_operator"])
    expected = list(UserAccess.objects.order_by("org_slug", "id").values_list("id", flat=True))
    check_paged(
        client,
        "/api/v1/rbac/grants/",
        size=15,
        key=lambda row: row["id"],
        expected=expected,
        more=lambda: _grants("globex", 90),
    )
    # an owner of acme reads acme's grants only
    pages, _ = walk(client_for(cast["owner"]), "/api/v1/rbac/grants/?size=20")
    assert {row["org_slug"] for page in pages for row in page} == {"acme"}


def test_api_tokens(cast, client_for):
    owner = cast["owner"]
    make_tokens(owner, 30)
    make_tokens(cast["viewer"], 5)
    expected = list(
        ApiToken.objects.filter(user=owner)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
    )
    check_paged(
        client_for(owner),
        "/api/v1/tokens/",
        size=10,
        key=lambda row: row["id"],
        expected=expected,
        more=lambda: make_tokens(owner, 60),
    )


def _apps(env: str, count: int, start: int = 0) -> None:
    version = BlueprintVersion.objects.first()
    Application.objects.bulk_create(
        Application(
            environment=Environment.objects.get(name=env),
            name=f"app-{i:04d}",
            blueprint_version=version,
        )
        for i in range(start, start + count)
    )


def test_applications(cast, catalog, client_for):
    _apps("acme-prod", 30)
    _apps("globex-prod", 5)
    url = "/api/v1/orgs/acme/environments/acme-prod/applications/"
    check_paged(
        client_for(cast["owner"]),
        url,
        size=12,
        key=lambda row: row["name"],
        expected=[f"app-{i:04d}" for i in range(30)],
        more=lambda: _apps("acme-prod", 60, start=30),
    )


def _events(org: str, count: int) -> None:
    AuditEvent.objects.bulk_create(
        AuditEvent(
            action="test.event",
            target_type="test",
            target_id=str(i),
            target_repr=f"event {i}",
            org_slug=org,
        )
        for i in range(count)
    )


def test_organization_audit(cast, client_for):
    _events("acme", 50)
    _events("globex", 10)
    expected = list(
        AuditEvent.objects.filter(org_slug="acme")
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
    )
    check_paged(
        client_for(cast["owner"]),
        "/api/v1/orgs/acme/audit",
        size=20,
        key=lambda row: row["id"],
        expected=expected,
        more=lambda: _events("acme", 300),
    )


def _proposals(org: Organization, count: int, start: int = 0) -> None:
    CatalogProposal.objects.bulk_create(
        CatalogProposal(
            organization=org,
            name=f"bp-p{i:03d}",
            versions=["1.0.0"],
            document="{}",
            state="rejected",
        )
        for i in range(start, start + count)
    )


def test_catalog_proposals(cast, client_for):
    _proposals(cast["acme"], 25)
    expected = list(
        CatalogProposal.objects.order_by("-created_at", "-id").values_list("id", flat=True)
    )
    check_paged(
        client_for(cast["sovereign_operator"]),
        "/api/v1/catalog/proposals/",
        size=10,
        key=lambda row: row["id"],
        expected=expected,
        more=lambda: _proposals(cast["globex"], 60, start=100),
    )


def test_blueprints(cast, catalog, client_for, publish):
    from tests.marketplace.conftest import blueprint_doc

    publish(*[blueprint_doc(f"bp-many{i:03d}", "1.0.0") for i in range(70)])
    client = client_for(cast["owner"])
    pages, costs = walk(client, "/api/v1/blueprints/?category=testing")
    assert len(pages) == 2 and len(pages[0]) == 60 and len(pages[1]) == 10
    names = [row["name"] for page in pages for row in page]
    assert sorted(names) == [f"bp-many{i:03d}" for i in range(70)]
    assert max(costs) - min(costs) <= 1
