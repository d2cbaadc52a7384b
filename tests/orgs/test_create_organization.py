from __future__ import annotations

import pytest
import yaml

from core.models import AuditEvent, OutboxItem
from orgs.models import Environment, Organization
from rbac.models import UserAccess
from tests.conftest import make_user
from tests.gitutil import commits, files, show

pytestmark = pytest.mark.django_db


def test_ui_create_commits_crs_audits_and_makes_creator_owner(sovereign, client_for, on_commit):
    user = make_user("carol")
    with on_commit():
        response = client_for(user).post(
            "/orgs/new/",
            {
                "slug": "carol-co",
                "display_name": "Carol & Co",
                "default_env_type": "prod",
                "env_type": "prod",
                "regions": ["hz-fsn-rtz-prod", "hz-hel-rtz-prod"],
            },
        )
    assert response.status_code == 302
    assert response["Location"] == "/orgs/carol-co/"
    org = Organization.objects.get(slug="carol-co")
    assert org.state == "provisioning" and org.delivery_state == "delivered"
    env = Environment.objects.get(organization=org)
    assert env.name == "carol-co-prod" and env.placement == "multi-region"
    assert UserAccess.objects.get(user=user).tier == "owner"
    event = AuditEvent.objects.get(action="organization.create")
    assert (
        event.actor == user
        and event.org_slug == "carol-co"
        and event.after["display_name"] == "Carol & Co"
    )
    assert AuditEvent.objects.filter(action="environments.create", org_slug="carol-co").count() == 1

    assert commits()[0] == "organization.create: organization carol-co"
    assert org.last_commit_sha == commits_sha()
    org_cr = yaml.safe_load(show("organizations/carol-co/organization.yaml"))
    assert org_cr["kind"] == "Organization" and org_cr["spec"]["displayName"] == "Carol & Co"
    assert org_cr["metadata"]["labels"]["openova.io/organization"] == "carol-co"
    assert org_cr["metadata"]["labels"]["openova.io/managed-by"] == "flux"
    env_cr = yaml.safe_load(show("organizations/carol-co/environments/carol-co-prod.yaml"))
    assert [r["hostCluster"] for r in env_cr["spec"]["regions"]] == [
        "hz-fsn-rtz-prod",
        "hz-hel-rtz-prod",
    ]
    assert env_cr["metadata"]["labels"]["openova.io/env-type"] == "prod"
    assert env_cr["spec"]["branch"] == "main"
    # the Gitea Org <slug> with its shared-blueprints repo
    assert files("carol-co", "shared-blueprints") == ["README.md"]
    # the page shows the commit
    page = client_for(user).get("/orgs/carol-co/")
    assert page.status_code == 200 and org.last_commit_sha[:8].encode() in page.content
    assert not OutboxItem.objects.pending().exists()


def commits_sha() -> str:
    from tests.gitutil import git

    return git("system", "catalyst-config", "rev-parse", "main").strip()


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("ab", "3 to 32"),
        ("Acme", "lower-case letter"),
        ("9lives", "lower-case letter"),
        ("acme_co", "only lower-case letters"),
        ("flux", "reserved"),
        ("kube-system", "reserved"),
        ("oci", "reserved"),
        ("hetzner", "reserved"),
        ("marketplace", "reserved"),
        ("prod", "reserved"),
        ("rtz", "reserved"),
        ("a" * 33, "3 to 32"),
        ("acme-", "end with a dash"),
    ],
)
def test_bad_slug_is_refused_per_field_and_nothing_is_written(
    sovereign, client_for, on_commit, slug, message
):
    user = make_user("dave")
    with on_commit():
        response = client_for(user).post(
            "/orgs/new/", {"slug": slug, "display_name": "X", "default_env_type": "prod"}
        )
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["slug"])
    assert (
        not Organization.objects.exists()
        and not AuditEvent.objects.exists()
        and not OutboxItem.objects.exists()
    )
    assert commits() == []


def test_duplicate_slug_is_a_409_in_the_api_and_a_field_error_in_the_form(
    cast, client_for, on_commit
):
    before = len(commits())
    with on_commit():
        api = client_for(cast["outsider"]).post(
            "/api/v1/orgs/",
            {"slug": "acme", "display_name": "Again"},
            content_type="application/json",
        )
        form = client_for(cast["outsider"]).post(
            "/orgs/new/", {"slug": "acme", "display_name": "Again", "default_env_type": "prod"}
        )
    assert api.status_code == 409
    assert "already taken" in api.json()["errors"]["slug"][0]
    assert form.status_code == 400 and "already taken" in form.context["form"].errors["slug"][0]
    assert Organization.objects.count() == 2 and len(commits()) == before


def test_api_create_with_too_many_regions_or_unknown_cluster_writes_nothing(
    sovereign, client_for, on_commit
):
    user = make_user("erin")
    client = client_for(user)
    with on_commit():
        too_many = client.post(
            "/api/v1/orgs/",
            {
                "slug": "erin-co",
                "display_name": "Erin",
                "environments": [{"env_type": "prod", "regions": ["a", "b", "c", "d", "e", "f"]}],
            },
            content_type="application/json",
        )
        unknown = client.post(
            "/api/v1/orgs/",
            {
                "slug": "erin-co",
                "display_name": "Erin",
                "environments": [{"env_type": "prod", "regions": ["hz-xxx-rtz-prod"]}],
            },
            content_type="application/json",
        )
    assert too_many.status_code == 400 and "environments[0].regions" in too_many.json()["errors"]
    assert unknown.status_code == 400
    assert (
        "Unknown host cluster: hz-xxx-rtz-prod"
        in unknown.json()["errors"]["environments[0].regions"][0]
    )
    assert not Organization.objects.exists() and not AuditEvent.objects.exists() and commits() == []


def test_api_create_returns_201_with_the_organization(sovereign, client_for, on_commit):
    user = make_user("frank")
    with on_commit():
        response = client_for(user).post(
            "/api/v1/orgs/",
            {
                "slug": "frank-co",
                "display_name": "Frank",
                "environments": [{"env_type": "dev", "regions": ["hz-fsn-rtz-dev"]}],
            },
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "frank-co" and body["environments"][0]["name"] == "frank-co-dev"
    assert "organizations/frank-co/environments/frank-co-dev.yaml" in files()


def test_slug_check_htmx_fragment(cast, client_for):
    client = client_for(cast["outsider"])
    taken = client.get("/orgs/check-slug/", {"slug": "acme"}, HTTP_HX_REQUEST="true")
    free = client.get("/orgs/check-slug/", {"slug": "new-co"}, HTTP_HX_REQUEST="true")
    reserved = client.get("/orgs/check-slug/", {"slug": "gitea"}, HTTP_HX_REQUEST="true")
    assert b"already taken" in taken.content and b"<html" not in taken.content
    assert b"is available" in free.content
    assert b"reserved" in reserved.content
    assert "HX-Request" in free["Vary"]


def test_environments_record_the_commit_that_delivered_their_files(cast):
    from orgs.models import Environment, Organization
    from tests.gitutil import show

    org = Organization.objects.get(slug="acme")
    environments = list(Environment.objects.filter(organization=org))
    assert len(environments) == 2
    for env in environments:
        assert env.delivery_state == "delivered", env.name
        assert env.last_commit_sha == org.last_commit_sha and env.delivered_at is not None
        committed = show(
            f"organizations/acme/environments/{env.name}.yaml", branch=env.last_commit_sha
        )
        assert f"name: {env.name}" in committed
