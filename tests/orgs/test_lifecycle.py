from __future__ import annotations

import pytest
import yaml

from core.models import AuditEvent
from orgs.models import Environment, Organization
from tests.gitutil import commits, show

pytestmark = pytest.mark.django_db


def test_owner_renames_org_and_the_cr_follows(cast, client_for, on_commit):
    before = len(commits())
    with on_commit():
        response = client_for(cast["owner"]).post(
            "/orgs/acme/edit/", {"display_name": "Acme Corporation"}
        )
    assert response.status_code == 302
    assert Organization.objects.get(slug="acme").display_name == "Acme Corporation"
    event = AuditEvent.objects.filter(action="organization.update").get()
    assert event.before == {"display_name": "Acme"} and event.after == {
        "display_name": "Acme Corporation"
    }
    assert len(commits()) == before + 1 and commits()[0] == "organization.update: organization acme"
    assert (
        yaml.safe_load(show("organizations/acme/organization.yaml"))["spec"]["displayName"]
        == "Acme Corporation"
    )


def test_rename_with_blank_name_is_a_field_error(cast, client_for, on_commit):
    with on_commit():
        response = client_for(cast["owner"]).post("/orgs/acme/edit/", {"display_name": ""})
    assert response.status_code == 400 and "display_name" in response.context["form"].errors
    assert not AuditEvent.objects.filter(action="organization.update").exists()


def test_suspend_resume_archive_cycle(cast, client_for, on_commit):
    client = client_for(cast["owner"])
    with on_commit():
        assert client.post("/orgs/acme/suspend/", {"confirm": "acme"}).status_code == 302
    assert Organization.objects.get(slug="acme").state == "suspended"
    assert (
        yaml.safe_load(show("organizations/acme/organization.yaml"))["spec"]["lifecycle"]
        == "suspended"
    )
    # a suspended org takes no new Environments
    with on_commit():
        refused = client.post(
            "/api/v1/orgs/acme/environments/",
            {"env_type": "stg", "regions": ["hz-fsn-rtz-prod"]},
            content_type="application/json",
        )
    assert refused.status_code == 409 and "resume it first" in refused.json()["errors"]["state"][0]
    with on_commit():
        assert client.post("/orgs/acme/resume/").status_code == 302
    assert Organization.objects.get(slug="acme").state == "provisioning"
    with on_commit():
        assert client.post("/orgs/acme/archive/", {"confirm": "acme"}).status_code == 302
    assert Organization.objects.get(slug="acme").state == "archived"
    assert (
        yaml.safe_load(show("organizations/acme/organization.yaml"))["spec"]["lifecycle"]
        == "archived"
    )
    # archived orgs leave the default list but remain reachable
    listing = client.get("/orgs/")
    assert (
        b"/orgs/acme/" not in listing.content
        and b"/orgs/acme/" in client.get("/orgs/?archived=1").content
    )
    # an archived org cannot be suspended (409, nothing written)
    events = AuditEvent.objects.count()
    assert client.post("/orgs/acme/suspend/", {"confirm": "acme"}).status_code == 409
    assert AuditEvent.objects.count() == events
    actions = list(
        AuditEvent.objects.filter(org_slug="acme", action__startswith="organization.").values_list(
            "action", flat=True
        )
    )
    assert {"organization.suspend", "organization.resume", "organization.archive"} <= set(actions)


def test_viewer_and_admin_cannot_suspend_but_owner_can(cast, client_for, on_commit):
    before = len(commits())
    for who in ("viewer", "admin", "developer"):
        assert (
            client_for(cast[who]).post("/orgs/acme/suspend/", {"confirm": "acme"}).status_code
            == 403
        )
        assert client_for(cast[who]).post("/api/v1/orgs/acme/suspend").status_code == 403
    assert client_for(cast["member_b"]).post("/orgs/acme/suspend/").status_code == 404
    assert (
        Organization.objects.get(slug="acme").state == "provisioning" and len(commits()) == before
    )


def test_admin_creates_environment_with_regions(cast, client_for, on_commit):
    with on_commit():
        response = client_for(cast["admin"]).post(
            "/orgs/acme/environments/new/",
            {"env_type": "stg", "regions": ["hz-fsn-rtz-prod", "hz-hel-rtz-prod"]},
        )
    assert (
        response.status_code == 302 and response["Location"] == "/orgs/acme/environments/acme-stg/"
    )
    env = Environment.objects.get(name="acme-stg")
    assert env.placement == "multi-region" and sorted(c.name for c in env.regions.all()) == [
        "hz-fsn-rtz-prod",
        "hz-hel-rtz-prod",
    ]
    cr = yaml.safe_load(show("organizations/acme/environments/acme-stg.yaml"))
    assert (
        cr["spec"]["branch"] == "staging"
        and cr["metadata"]["labels"]["openova.io/environment"] == "acme-stg"
    )
    assert AuditEvent.objects.filter(
        action="environments.create", target_repr="acme-stg", actor=cast["admin"]
    ).exists()
    page = client_for(cast["viewer"]).get("/orgs/acme/environments/acme-stg/")
    assert page.status_code == 200 and b"hz-hel-rtz-prod" in page.content


def test_duplicate_environment_type_and_no_regions_are_refused(cast, client_for, on_commit):
    before = len(commits())
    client = client_for(cast["admin"])
    with on_commit():
        dup = client.post(
            "/api/v1/orgs/acme/environments/",
            {"env_type": "prod", "regions": ["hz-fsn-rtz-prod"]},
            content_type="application/json",
        )
        none = client.post("/orgs/acme/environments/new/", {"env_type": "uat"})
    assert (
        dup.status_code == 409
        and "already has a prod Environment" in dup.json()["errors"]["env_type"][0]
    )
    assert none.status_code == 400 and "regions" in none.context["form"].errors
    assert (
        Environment.objects.filter(organization__slug="acme").count() == 2
        and len(commits()) == before
    )


def test_viewer_cannot_create_environment(cast, client_for):
    assert client_for(cast["viewer"]).get("/orgs/acme/environments/new/").status_code == 403
    assert (
        client_for(cast["viewer"])
        .post(
            "/api/v1/orgs/acme/environments/",
            {"env_type": "stg", "regions": ["hz-fsn-rtz-prod"]},
            content_type="application/json",
        )
        .status_code
        == 403
    )
    assert not Environment.objects.filter(name="acme-stg").exists()


def test_resync_without_changes_makes_no_commit(cast):
    from core.models import OutboxItem
    from orgs.services import deliver_organization

    org = cast["acme"]
    before = commits()
    item = OutboxItem.objects.create(task_name="orgs.tasks.sync_organization_task", key=str(org.pk))
    head = deliver_organization(org_id=org.pk, item=item)
    assert commits() == before and head is not None
    assert Organization.objects.get(pk=org.pk).last_commit_sha == head


def test_api_lists_only_visible_orgs_and_patches_display_name(cast, client_for, on_commit):
    mine = client_for(cast["viewer"]).get("/api/v1/orgs/").json()
    assert [o["slug"] for o in mine] == ["acme"]
    assert sorted(
        o["slug"] for o in client_for(cast["sovereign_operator"]).get("/api/v1/orgs/").json()
    ) == ["acme", "globex"]
    assert client_for(cast["outsider"]).get("/api/v1/orgs/").json() == []
    assert client_for(cast["member_b"]).get("/api/v1/orgs/acme/").status_code == 404
    with on_commit():
        ok = client_for(cast["owner"]).patch(
            "/api/v1/orgs/acme/", {"display_name": "Acme API"}, content_type="application/json"
        )
        bad = client_for(cast["owner"]).patch(
            "/api/v1/orgs/acme/", {"display_name": ""}, content_type="application/json"
        )
    assert ok.status_code == 200 and ok.json()["display_name"] == "Acme API"
    assert bad.status_code == 400 and "display_name" in bad.json()["errors"]


def test_org_audit_page_and_global_audit_for_operators_only(cast, client_for):
    owner_view = client_for(cast["owner"]).get("/orgs/acme/audit/", {"action": "organization."})
    assert owner_view.status_code == 200 and b"organization.create" in owner_view.content
    assert b"globex" not in owner_view.content
    assert client_for(cast["member_b"]).get("/orgs/acme/audit/").status_code == 404
    # operator pages are not disclosed to tenants (rbac.access.require_global)
    assert client_for(cast["owner"]).get("/audit/").status_code == 404
    everything = client_for(cast["sovereign_operator"]).get("/audit/", {"org": "globex"})
    assert everything.status_code == 200 and b"globex" in everything.content
    api = client_for(cast["owner"]).get("/api/v1/orgs/acme/audit").json()
    assert {e["action"] for e in api} >= {
        "organization.create",
        "environments.create",
        "rbac.assign",
    }


def test_openapi_schema_is_served(client_for, cast):
    response = client_for(cast["owner"]).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert b"/api/v1/orgs/" in response.content


def test_audit_csv_export_is_filtered_and_scoped(cast, client_for):
    import csv
    import io

    response = client_for(cast["owner"]).get(
        "/orgs/acme/audit/", {"action": "environments.", "format": "csv"}
    )
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["action"] for r in rows} == {"environments.create"}
    assert {r["org_slug"] for r in rows} == {"acme"} and len(rows) == 2
    assert (
        client_for(cast["member_b"]).get("/orgs/acme/audit/", {"format": "csv"}).status_code == 404
    )


def test_org_page_links_the_billing_account(cast, client_for):
    owner_page = client_for(cast["owner"]).get("/orgs/acme/").content.decode()
    assert 'href="/billing/acme/"' in owner_page
    account = client_for(cast["owner"]).get("/billing/acme/")
    assert account.status_code == 200
