"""The shell's site facts (catalyst_portal/context_processors.py `site_facts`): the Sovereign's
name and whether any Flux cluster reports back are cached under core.versioned.SITE, and every
write of either shows on the next page."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from gitops.models import FluxCluster
from orgs.models import Sovereign
from tests.marketplace.test_catalog_pages import count_queries

pytestmark = pytest.mark.django_db
BANNER = b"No cluster is connected."


@pytest.fixture
def page_cache(page_cache: None, settings: Any) -> None:
    """The shared fixture, with no cluster connected (the banner shows)."""
    settings.FLUX_CLUSTER_CONNECTED = False
    settings.SIMULATED_CLUSTER = False


def test_a_new_cluster_or_name_shows_on_the_next_page(cast, client_for, page_cache):
    client = client_for(cast["viewer"])
    for _ in range(2):  # stored, then from the cache
        page = client.get("/orgs/").content
        assert BANNER in page and "<title>Organizations · demo.local</title>".encode() in page
    cluster = FluxCluster.objects.create(name="hz-fsn-rtz-prod", connected=True)
    assert BANNER not in client.get("/orgs/").content
    sovereign = Sovereign.objects.get()
    sovereign.fqdn = "cloud.example.om"
    sovereign.save()
    page = client.get("/orgs/").content
    assert b"cloud.example.om" in page and b"demo.local" not in page and BANNER not in page
    cluster.delete()
    assert BANNER in client.get("/orgs/").content


def test_cached_facts_and_frame_save_three_queries_a_page(cast, client_for, settings, page_cache):
    client = client_for(cast["viewer"])
    client.get("/orgs/")
    cached, page = count_queries(lambda: client.get("/orgs/"))
    settings.PAGE_CACHE = False
    uncached, plain = count_queries(lambda: client.get("/orgs/"))
    assert BANNER in page.content and BANNER in plain.content
    # the Sovereign's name with the cluster flag (one query), and the frame's Organizations and
    # Environments (core.versioned.SHELL, tests/ux/test_shell_cache.py)
    assert cached == uncached - 3


def test_the_facts_are_one_query_and_hold_without_a_sovereign(cast, client_for, settings):
    settings.PAGE_CACHE = False
    settings.FLUX_CLUSTER_CONNECTED = False
    settings.SIMULATED_CLUSTER = False
    client = client_for(cast["viewer"])
    FluxCluster.objects.create(name="hz-fsn-rtz-prod", connected=True)
    seen: list[str] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        page = client.get("/orgs/").content
    assert b"demo.local" in page and BANNER not in page
    facts = [sql for sql in seen if "gitops_fluxcluster" in sql]
    assert len(facts) == 1 and "orgs_sovereign" in facts[0]  # one query for both facts
    Sovereign.objects.all().delete()
    FluxCluster.objects.all().delete()
    page = client.get("/orgs/").content
    assert "<title>Organizations · Catalyst</title>".encode() in page and BANNER in page
