"""Every signed-in page's frame (catalyst_portal/context_processors.py): the Organization
switcher and the current Organization's Environments come from the cache for the user's live
grants (core.versioned.SHELL) — and still follow a rename, a new Environment, a new grant and a
grant that expired on the very next request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs import services as org_services
from rbac import services as rbac_services
from rbac.models import UserAccess
from tests.conftest import org_scope

pytestmark = pytest.mark.django_db

PAGE = "/orgs/acme/audit/"
SWITCHER_SQL = 'SELECT "orgs_organization"."id", "orgs_organization"."slug", "orgs_organization"."display_name", "orgs_organization"."state" FROM'
ENVIRONMENTS_SQL = 'SELECT "orgs_environment"."id", "orgs_environment"."organization_id", "orgs_environment"."name" FROM'


def _frame(client: Any, path: str = PAGE) -> tuple[str, str, list[str]]:
    """The switcher and the sidebar of `path`, and the SQL the request ran."""
    with CaptureQueriesContext(connection) as ran:
        response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    switcher = html.split('class="tb-menu switcher"')[1].split("</details>")[0]
    sidebar = html.split('<nav class="sidebar" aria-label="Primary">')[1].split("</nav>")[0]
    return switcher, sidebar, [q["sql"] for q in ran.captured_queries]


def _reads_the_frame(sql: list[str]) -> bool:
    return any(s.startswith((SWITCHER_SQL, ENVIRONMENTS_SQL)) for s in sql)


def test_the_frame_is_read_once_for_the_same_grants(cast, client_for, page_cache):
    admin, developer = client_for(cast["admin"]), client_for(cast["developer"])
    first = _frame(admin)
    assert _reads_the_frame(first[2])  # built and stored
    again = _frame(admin)
    assert not _reads_the_frame(again[2]) and again[:2] == first[:2]
    assert 'href="/orgs/acme/environments/acme-prod/"' in again[1]
    # another user with other grants: their own lists, not the admin's
    mine = _frame(developer)
    assert _reads_the_frame(mine[2]) and 'href="/orgs/acme/"' in mine[0]
    outsider = client_for(cast["member_b"]).get("/orgs/").content.decode()
    assert "/orgs/acme/" not in outsider.split('class="tb-menu switcher"')[1].split("</details>")[0]


def test_the_frame_follows_every_change_on_the_next_request(
    cast, client_for, page_cache, on_commit
):
    viewer = client_for(cast["viewer"])
    switcher, sidebar, _ = _frame(viewer)
    assert "Acme" in switcher and "Globex" not in switcher
    with on_commit():
        org_services.rename_organization(
            by=cast["owner"], org=cast["acme"], display_name="Acme Rockets"
        )
    switcher, sidebar, _ = _frame(viewer)
    assert "Acme Rockets" in switcher and "Acme Rockets" in sidebar

    from orgs.models import HostCluster, Sovereign

    HostCluster.objects.create(
        sovereign=Sovereign.objects.get(),
        provider="hetzner",
        region="fsn",
        building_block="rtz",
        env_type="stg",
    )
    with on_commit():
        env = org_services.create_environment(
            by=cast["owner"], org=cast["acme"], env_type="stg", regions=["hz-fsn-rtz-stg"]
        )
    assert f'href="/orgs/acme/environments/{env.name}/"' in _frame(viewer)[1]

    # a grant given: Globex is listed at once; the grant expires (no write of the grant that a
    # signal would see): it is gone at once
    soon = timezone.now() + timedelta(hours=1)
    with on_commit():
        rbac_services.assign(
            by=None, user=cast["viewer"], tier="viewer", scopes=org_scope("globex"), expires_at=soon
        )
    assert "Globex" in _frame(viewer)[0]
    UserAccess.objects.filter(user=cast["viewer"], expires_at=soon).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert "Globex" not in _frame(viewer)[0]
