"""List pages that were unbounded (the API tokens page, catalog sync errors, the curation queue)
show a keyset page with a next link, every row once across the pages, at a query cost that does
not grow with the rows (core/pagination.py, core/keyset_nav.html)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiToken
from marketplace.models import CatalogProposal, CatalogSource, CatalogSyncError
from tests.conftest import make_tokens

pytestmark = pytest.mark.django_db

NEXT = re.compile(r'href="\?([^"]*after=[^"]+)" rel="next"')


def walk(client: Any, path: str, row: re.Pattern[str]) -> tuple[list[str], list[int]]:
    """Every page's rows (by `row`'s first group) following the next links, and each page's cost."""
    seen, costs, url = [], [], path
    while True:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        seen.append(row.findall(html))
        costs.append(len(queries))
        found = NEXT.search(html)
        if not found:
            return [r for page in seen for r in page], [len(p) for p in seen] + costs
        url = f"{path.split('?')[0]}?{found.group(1).replace('&amp;', '&')}"


def check(
    client: Any, path: str, row: re.Pattern[str], expected: list[str], more: Callable[[], None]
) -> None:
    rows, sizes_and_costs = walk(client, f"{path}", row)
    pages = len(sizes_and_costs) // 2
    sizes, costs = sizes_and_costs[:pages], sizes_and_costs[pages:]
    assert pages > 1 and sizes[0] == 50 and all(0 < s <= 50 for s in sizes), sizes
    assert rows == expected
    assert max(costs) - min(costs) <= 1, costs
    more()
    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    assert len(queries) <= max(costs), "a page's cost grows with the rows"


def test_api_tokens_page(cast, client_for):
    owner = cast["owner"]
    make_tokens(owner, 70)
    make_tokens(cast["viewer"], 3)
    expected = list(
        ApiToken.objects.filter(user=owner)
        .order_by("-created_at", "-id")
        .values_list("name", flat=True)
    )
    check(
        client_for(owner),
        "/account/tokens/",
        re.compile(r"<td>(token-\d+)</td>"),
        expected,
        more=lambda: make_tokens(owner, 150),
    )


def _errors(source: CatalogSource, count: int, start: int = 0) -> None:
    CatalogSyncError.objects.bulk_create(
        CatalogSyncError(source=source, path=f"bp-broken-{i:04d}.yaml", error="bad")
        for i in range(start, start + count)
    )


def test_catalog_sync_errors_page(cast, client_for):
    source = CatalogSource.objects.create(name="broken", kind="directory", location="/nowhere")
    _errors(source, 60)
    check(
        client_for(cast["sovereign_operator"]),
        "/marketplace/sync-errors/",
        re.compile(r"<code>(bp-broken-\d+\.yaml)</code>"),
        [f"bp-broken-{i:04d}.yaml" for i in range(60)],
        more=lambda: _errors(source, 200, start=60),
    )
    assert client_for(cast["owner"]).get("/marketplace/sync-errors/").status_code == 404


def _proposals(org: Any, count: int, state: str, start: int = 0) -> None:
    CatalogProposal.objects.bulk_create(
        CatalogProposal(
            organization=org, name=f"bp-p{i:04d}", versions=["1.0.0"], document="{}", state=state
        )
        for i in range(start, start + count)
    )


def test_curation_queue_pages_pending_and_decided(cast, client_for):
    _proposals(cast["acme"], 60, "pending")
    _proposals(cast["globex"], 55, "rejected", start=1000)
    client = client_for(cast["sovereign_operator"])
    row = re.compile(r'<a href="/marketplace/curation/\d+/">(bp-p\d+)</a>')
    # pending: the oldest first (a queue)
    pending = list(
        CatalogProposal.objects.filter(state="pending")
        .order_by("created_at", "id")
        .values_list("name", flat=True)
    )
    check(
        client,
        "/marketplace/curation/",
        row,
        pending,
        more=lambda: _proposals(cast["globex"], 100, "pending", start=2000),
    )
    # decided: the newest first
    decided = list(
        CatalogProposal.objects.exclude(state="pending")
        .order_by("-created_at", "-id")
        .values_list("name", flat=True)
    )
    check(
        client,
        "/marketplace/curation/?state=decided",
        row,
        decided,
        more=lambda: _proposals(cast["acme"], 100, "published", start=3000),
    )
    assert client_for(cast["owner"]).get("/marketplace/curation/").status_code == 404
