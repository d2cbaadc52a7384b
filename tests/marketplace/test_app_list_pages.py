"""/marketplace/apps/ with many Applications: keyset pages of bounded size and cost."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.models import Application, BlueprintVersion
from orgs.models import Environment

pytestmark = pytest.mark.django_db

ROW = re.compile(r'href="/marketplace/apps/([a-z0-9-]+)/([a-z0-9-]+)/"')
NEXT = re.compile(r'href="\?([^"]*after=[^"]+)" rel="next"')


def _many_apps(count: int, envs: list[str]) -> None:
    version = BlueprintVersion.objects.select_related("blueprint").first()
    assert version is not None
    Application.objects.bulk_create(
        Application(
            environment=Environment.objects.get(name=env),
            name=f"app-{i:04d}",
            blueprint_version=version,
        )
        for env in envs
        for i in range(count)
    )


def _rows(html: str) -> list[tuple[str, str]]:
    return ROW.findall(html)


def test_the_list_is_paged_and_every_visible_app_is_listed_once(cast, catalog, client_for):
    _many_apps(70, ["acme-prod", "acme-dev", "globex-prod"])
    client = client_for(cast["owner"])

    seen: list[tuple[str, str]] = []
    query = ""
    pages = 0
    while True:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/marketplace/apps/?{query}")
        assert response.status_code == 200
        html = response.content.decode()
        rows = _rows(html)
        assert 0 < len(rows) <= 50
        # The cost of a page does not grow with the number of Applications.
        assert len(queries) <= 15
        seen += rows
        pages += 1
        found = NEXT.search(html)
        if not found:
            break
        query = found.group(1).replace("&amp;", "&")
    assert pages == 3
    assert len(seen) == len(set(seen)) == 140
    assert seen == sorted(seen)
    assert {env for env, _ in seen} == {"acme-prod", "acme-dev"}  # globex's are not visible


def test_a_forged_cursor_shows_the_first_page(cast, catalog, client_for):
    _many_apps(60, ["acme-prod"])
    client = client_for(cast["owner"])
    first = _rows(client.get("/marketplace/apps/").content.decode())
    forged = client.get("/marketplace/apps/?after=not-a-cursor")
    assert forged.status_code == 200
    assert _rows(forged.content.decode()) == first


def test_page_size_is_bounded(cast, catalog, client_for):
    _many_apps(30, ["acme-prod"])
    client = client_for(cast["owner"])
    assert len(_rows(client.get("/marketplace/apps/?size=10").content.decode())) == 10
    assert len(_rows(client.get("/marketplace/apps/?size=100000").content.decode())) == 30
    assert len(_rows(client.get("/marketplace/apps/?size=x").content.decode())) == 30


def test_outsider_sees_no_applications(cast, catalog, client_for: Any):
    _many_apps(5, ["acme-prod"])
    html = client_for(cast["outsider"]).get("/marketplace/apps/").content.decode()
    assert _rows(html) == []
