"""What the schema fuzz found (issue 10 §9), one request each through the API: the schema
publishes what the code checks (host clusters per env type, priced plans, one of user/group), and
the code refuses what the schema calls invalid (a number for a name, a control character in a
voucher code); a missing user is a 404, contradicting scope terms a 409."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def _schema(client: Any) -> dict[str, Any]:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()["components"]["schemas"]


def test_the_schema_lists_the_host_clusters_each_env_type_may_run_on(cast, client_for):
    variants = _schema(client_for(cast["owner"]))["EnvironmentInput"]["oneOf"]
    regions = {v["properties"]["env_type"]["enum"][0]: v["properties"]["regions"] for v in variants}
    assert "hz-fsn-rtz-prod" in regions["prod"]["items"]["enum"]
    assert "hz-fsn-rtz-dev" not in regions["prod"]["items"]["enum"]
    assert "hz-fsn-rtz-dev" in regions["dev"]["items"]["enum"]
    slug = _schema(client_for(cast["owner"]))["OrganizationInput"]["properties"]["slug"]
    assert "system" in slug["not"]["anyOf"][0]["enum"]


def test_a_quote_takes_the_priced_plans_and_add_ons(cast, client_for):
    quote = _schema(client_for(cast["owner"]))["QuoteInput"]["properties"]
    assert "s" in quote["plan"]["enum"]
    assert quote["addons"]["additionalProperties"] is False


def test_assign_takes_one_of_user_or_group_and_answers_404_for_a_missing_user(cast, client_for):
    owner = client_for(cast["owner"])
    assert _schema(owner)["AssignInput"]["oneOf"][0]["required"] == ["user"]
    scope = [{"key": "openova.io/organization", "value": "acme"}]
    missing = owner.post(
        "/api/v1/rbac/assign",
        {"user": "nobody", "tier": "viewer", "scope": scope},
        content_type="application/json",
    )
    assert missing.status_code == 404
    assert missing.json() == {"errors": {"user": ["No single active user 'nobody'."]}}
    contradicting = owner.post(
        "/api/v1/rbac/assign",
        {
            "user": "viewer",
            "tier": "viewer",
            "scope": [*scope, {"key": "openova.io/organization", "value": "globex"}],
        },
        content_type="application/json",
    )
    assert contradicting.status_code in (404, 409)  # globex is not the owner's to name
    twice = owner.post(
        "/api/v1/rbac/assign",
        {
            "user": "viewer",
            "tier": "viewer",
            "scope": [
                *scope,
                {"key": "openova.io/environment", "value": "acme-prod"},
                {"key": "openova.io/environment", "value": "acme-dev"},
            ],
        },
        content_type="application/json",
    )
    assert twice.status_code == 409 and "given twice" in str(twice.json()["errors"])
    # a form cannot carry the scope terms: JSON only
    form = owner.post("/api/v1/rbac/assign", {"user": "viewer", "tier": "viewer"})
    assert form.status_code == 415


def test_a_number_is_not_a_token_name_and_a_code_holds_no_control_character(cast, client_for):
    owner = client_for(cast["owner"])
    number = owner.post("/api/v1/tokens/", {"name": 12, "days": 5}, content_type="application/json")
    assert number.status_code == 400 and number.json()["errors"]["name"] == ["Not a valid string."]
    nul = owner.post(
        "/api/v1/vouchers/redeem",
        {"code": "VCH-\x00ABC", "organization": "acme"},
        content_type="application/json",
    )
    assert nul.status_code == 400 and "code" in nul.json()["errors"]


@pytest.mark.parametrize("size", ["", "0", "501", "ten", "1.5", "-3"])
def test_a_list_refuses_a_page_size_outside_its_schema(cast, client_for, size):
    """The fuzz sent `?size=` empty: the lists answered 200 with the default page."""
    owner = client_for(cast["owner"])
    for url in ("/api/v1/orgs/", "/api/v1/rbac/grants/", "/api/v1/tokens/"):
        response = owner.get(url, {"size": size})
        assert response.status_code == 400, (url, response.content)
        assert list(response.json()["errors"]) == ["size"]
    assert len(owner.get("/api/v1/rbac/grants/", {"size": "1"}).json()) == 1
    published = client_for(cast["owner"]).get("/api/schema/?format=json").json()
    (size_param,) = [
        p for p in published["paths"]["/api/v1/orgs/"]["get"]["parameters"] if p["name"] == "size"
    ]
    assert size_param["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}


@pytest.mark.parametrize("page", ["true", "0", "99999999999999999999"])
def test_the_catalog_api_refuses_a_page_outside_its_schema(cast, client_for, page):
    """`?page=true` answered 200 and a page past 64 bits a 500 (the OFFSET overflowed)."""
    owner = client_for(cast["owner"])
    response = owner.get("/api/v1/blueprints/", {"page": page})
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["page"]
    # the catalog page itself shows an empty page past the end, never an error
    assert owner.get("/marketplace/", {"page": page}).status_code == 200
