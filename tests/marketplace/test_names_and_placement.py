"""Issue 10 §4: reserved Application names, placement by Environment type, and catalog precedence
(the Sovereign's catalog wins a name; a conflicting Organization Blueprint is reported)."""

from __future__ import annotations

import json

import pytest

from marketplace import loader
from marketplace.models import Application, Blueprint, CatalogSyncError
from orgs.models import Environment, Organization
from tests.marketplace.conftest import blueprint_doc, share_blueprint

pytestmark = pytest.mark.django_db
API_APPS = "/api/v1/orgs/acme/environments/acme-prod/applications/"


@pytest.mark.parametrize("name", ["flux-system", "kube-system", "kube-public", "default"])
def test_reserved_application_names_are_refused(name, catalog, cast, client_for):
    response = client_for(cast["admin"]).post(
        API_APPS,
        json.dumps({"name": name, "blueprint": "bp-valkey"}),
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    assert "reserved" in response.json()["errors"]["name"][0]
    assert not Application.objects.filter(name=name).exists()


def test_prod_environment_is_refused_on_a_dev_host_cluster(cast, client_for):
    owner = client_for(cast["owner"])
    response = owner.post(
        "/api/v1/orgs/",
        json.dumps(
            {
                "slug": "newco",
                "display_name": "New Co",
                "environments": [{"env_type": "prod", "regions": ["hz-fsn-rtz-dev"]}],
            }
        ),
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    problem = response.json()["errors"]["environments[0].regions"][0]
    assert "hz-fsn-rtz-dev" in problem and "prod" in problem
    assert not Organization.objects.filter(slug="newco").exists()
    # a dev Environment is not placed on a production host cluster either
    globex = client_for(cast["member_b"]).post(
        "/api/v1/orgs/globex/environments/",
        json.dumps({"env_type": "dev", "regions": ["hz-hel-rtz-prod"]}),
        content_type="application/json",
    )
    assert globex.status_code == 400 and "regions" in globex.json()["errors"]
    assert not Environment.objects.filter(name="globex-dev").exists()


def test_sovereign_catalog_wins_a_name_an_organization_took_first(catalog, cast, publish):
    share_blueprint("acme", blueprint_doc("bp-kanban", "1.0.0"))
    loader.sync_all()
    assert Blueprint.objects.get(name="bp-kanban").owner.slug == "acme"

    publish(blueprint_doc("bp-kanban", "2.0.0"))  # the Sovereign's catalog publishes the name
    bp = Blueprint.objects.get(name="bp-kanban")
    assert bp.owner is None and bp.visibility != "private" and bp.source.name == "extra"
    assert list(bp.versions.values_list("version", flat=True)) == ["2.0.0"]
    reported = CatalogSyncError.objects.get(source__name="org:acme")
    assert "bp-kanban" in reported.error and "Sovereign" in reported.error

    # the Organization's next sync keeps reporting it and does not take the name back
    results = loader.sync_all()
    assert results["org:acme"]["errors"] == 1
    assert Blueprint.objects.get(name="bp-kanban").source.name == "extra"
