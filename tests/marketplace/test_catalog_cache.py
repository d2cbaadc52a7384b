"""The catalog page's cached cards and facets (marketplace/catalog_cache.py): the page is the same
as without the cache, a cached fragment is never shown to a viewer who may not see it, and a
sync or an edit shows up on the next request."""

from __future__ import annotations

import re
from typing import Any

import pytest

from marketplace.models import Blueprint
from rbac import services as rbac_services
from tests.conftest import org_scope
from tests.marketplace.conftest import blueprint_doc, private_blueprint_doc
from tests.marketplace.test_catalog_pages import count_queries

pytestmark = pytest.mark.django_db

PAGES = [
    "/marketplace/",
    "/marketplace/?q=internal",
    "/marketplace/?category=testing",
    "/marketplace/?tag=sso",
    "/marketplace/?environment=acme-prod",
]


def _html(response: Any) -> bytes:
    assert response.status_code == 200
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", response.content)


def _internal(publish: Any, title: str = "Acme Internal") -> None:
    publish(private_blueprint_doc("bp-internal", "acme", title, summary="ours", tags=["sso"]))


def test_the_cached_page_is_the_page(catalog, publish, cast, client_for, settings, page_cache):
    _internal(publish)
    for who in ("viewer", "member_b", "sovereign_operator"):
        client = client_for(cast[who])
        for path in PAGES:
            settings.PAGE_CACHE = False
            plain = _html(client.get(path))
            fragment = _html(client.get(path, HTTP_HX_REQUEST="true"))
            settings.PAGE_CACHE = True
            assert _html(client.get(path)) == plain  # built and stored
            assert _html(client.get(path)) == plain  # from the cache
            assert _html(client.get(path, HTTP_HX_REQUEST="true")) == fragment


def test_a_cached_private_card_is_not_shown_to_another_org(
    catalog, publish, cast, client_for, page_cache
):
    _internal(publish)
    own, other = client_for(cast["viewer"]), client_for(cast["member_b"])
    for _ in range(2):  # stored, then from the cache
        for path in ("/marketplace/", "/marketplace/?q=internal", "/marketplace/?tag=sso"):
            assert b"Acme Internal" in own.get(path).content
            assert b"Acme Internal" in own.get(path, HTTP_HX_REQUEST="true").content
            assert b"Acme Internal" not in other.get(path).content
            assert b"Acme Internal" not in other.get(path, HTTP_HX_REQUEST="true").content
    # the facets count only what the viewer sees
    assert b"testing (1)" in own.get("/marketplace/").content
    assert b"testing (" not in other.get("/marketplace/").content
    # a viewer granted the Organization sees its private card at once; revoked, no longer
    granted = rbac_services.assign(
        by=None, user=cast["member_b"], tier="viewer", scopes=org_scope("acme")
    )
    assert b"Acme Internal" in client_for(cast["member_b"]).get("/marketplace/").content
    rbac_services.revoke(by=None, grant=granted.grant, authorize=False)
    assert b"Acme Internal" not in client_for(cast["member_b"]).get("/marketplace/").content


def test_a_sync_or_an_edit_shows_up_at_once(catalog, publish, cast, client_for, page_cache):
    client = client_for(cast["viewer"])
    assert b"Acme Internal" not in client.get("/marketplace/").content  # cached without it
    _internal(publish)
    assert b"Acme Internal" in client.get("/marketplace/").content
    assert b"Acme Internal" in client.get("/marketplace/?q=acme", HTTP_HX_REQUEST="true").content
    _internal(publish, title="Acme Renamed")  # the synced document changed
    page = client.get("/marketplace/").content
    assert b"Acme Renamed" in page and b"Acme Internal" not in page
    bp = Blueprint.objects.get(name="bp-internal")  # any saved edit renews
    bp.title = "Edited By Hand"
    bp.save()
    assert b"Edited By Hand" in client.get("/marketplace/").content
    bp.delete()
    assert b"Edited By Hand" not in client.get("/marketplace/").content


def test_a_cached_catalog_page_reads_no_blueprint(publish, cast, client_for, page_cache):
    """With the cards, facets, the shell's Sovereign and cluster facts and its Organizations and
    Environments cached, the page reads only the session, the user and the grants."""
    client = client_for(cast["viewer"])
    publish(*[blueprint_doc(f"bp-app{i}", "1.0.0") for i in range(80)])
    first, page = count_queries(lambda: client.get("/marketplace/?q=app"))
    again, cached = count_queries(lambda: client.get("/marketplace/?q=app"))
    assert page.content.count(b'class="card"') == cached.content.count(b'class="card"') == 60
    assert first == 8 and again == 3


def test_without_valkey_nothing_is_cached(catalog, publish, cast, client_for, settings):
    """The default without a shared Valkey: every page reads the catalog (another process, such
    as `manage.py sync_catalog` from a shell, could not renew a cache local to this one)."""
    settings.PAGE_CACHE = False
    client = client_for(cast["viewer"])
    client.get("/marketplace/")
    again, _ = count_queries(lambda: client.get("/marketplace/"))
    assert again == 8


def test_while_valkey_is_unreachable_nothing_is_cached(
    catalog, publish, cast, client_for, settings
):
    """Valkey down: the cache answers from this process only, which another process's sync could
    not renew, so every page reads the catalog (and a sync still shows at once)."""
    settings.PAGE_CACHE = True
    settings.CACHES = {
        "default": {"BACKEND": "core.cache.ResilientRedisCache", "LOCATION": "redis://127.0.0.1:1"}
    }
    client = client_for(cast["viewer"])
    client.get("/marketplace/")
    again, page = count_queries(lambda: client.get("/marketplace/"))
    assert page.status_code == 200 and b"WordPress" in page.content and again == 8
    _internal(publish)
    assert b"Acme Internal" in client.get("/marketplace/").content
