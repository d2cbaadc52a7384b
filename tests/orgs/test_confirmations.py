"""Suspend and Archive need the Organization's name typed; an archived Organization can be restored
within the retention period (issue 11, defect 6)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from django.utils import timezone

from core.models import AuditEvent
from orgs.models import Organization
from tests.gitutil import commits, show

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("action", "state"), [("suspend", "suspended"), ("archive", "archived")])
def test_destructive_lifecycle_actions_need_the_name_typed(
    cast, client_for, on_commit, action, state
):
    client = client_for(cast["owner"])
    page = client.get(f"/orgs/acme/{action}/")
    html = page.content.decode()
    assert page.status_code == 200 and "Type <strong>acme</strong> to confirm" in html
    assert f"{action.title()} acme" in html  # the button says the verb and the name
    before = len(commits())
    for typed in ({}, {"confirm": "acm"}, {"confirm": "Acme Corp"}):
        with on_commit():
            refused = client.post(f"/orgs/acme/{action}/", typed)
        assert refused.status_code == 400
        body = refused.content.decode()
        assert "There is a problem" in body and 'aria-invalid="true"' in body
        assert 'href="#id_confirm"' in body  # the summary links to the field
    assert Organization.objects.get(slug="acme").state == "provisioning"
    assert len(commits()) == before
    assert not AuditEvent.objects.filter(action=f"organization.{action}").exists()
    assert (
        client_for(cast["admin"]).post(f"/orgs/acme/{action}/", {"confirm": "acme"}).status_code
        == 403
    )
    with on_commit():
        done = client.post(f"/orgs/acme/{action}/", {"confirm": " acme "})
    assert done.status_code == 302
    assert Organization.objects.get(slug="acme").state == state
    assert (
        yaml.safe_load(show("organizations/acme/organization.yaml"))["spec"]["lifecycle"] == state
    )


def test_an_archived_organization_is_restored_within_the_retention_period(
    cast, client_for, on_commit, settings
):
    settings.ORG_RESTORE_DAYS = 30
    client = client_for(cast["owner"])
    with on_commit():
        client.post("/orgs/acme/archive/", {"confirm": "acme"})
    detail = client.get("/orgs/acme/").content.decode()
    assert "/orgs/acme/restore/" in detail
    page = client.get("/orgs/acme/restore/")
    assert page.status_code == 200 and "Restore acme" in page.content.decode()
    assert client.post("/orgs/acme/restore/", {"confirm": "nope"}).status_code == 400
    assert (
        client_for(cast["viewer"]).post("/orgs/acme/restore/", {"confirm": "acme"}).status_code
        == 403
    )
    with on_commit():
        response = client.post("/orgs/acme/restore/", {"confirm": "acme"})
    assert response.status_code == 302
    org = Organization.objects.get(slug="acme")
    assert org.state == "provisioning" and org.archived_at is None
    assert (
        yaml.safe_load(show("organizations/acme/organization.yaml"))["spec"]["lifecycle"]
        == "active"
    )
    assert AuditEvent.objects.filter(action="organization.restore", org_slug="acme").exists()
    # past the retention period an archived Organization stays archived
    with on_commit():
        client.post("/orgs/acme/archive/", {"confirm": "acme"})
    Organization.objects.filter(slug="acme").update(archived_at=timezone.now() - timedelta(days=31))
    late = client.post("/orgs/acme/restore/", {"confirm": "acme"})
    assert late.status_code == 409 and "retention" in late.content.decode()
    assert Organization.objects.get(slug="acme").state == "archived"


def test_restore_through_the_api(cast, client_for, on_commit):
    client = client_for(cast["owner"])
    with on_commit():
        assert client.post("/api/v1/orgs/acme/archive").status_code == 200
        response = client.post("/api/v1/orgs/acme/restore")
    assert response.status_code == 200 and response.json()["state"] == "provisioning"
    assert Organization.objects.get(slug="acme").archived_at is None
    again = client.post("/api/v1/orgs/acme/restore")
    assert again.status_code == 409 and "Only an archived" in again.json()["errors"]["state"][0]
