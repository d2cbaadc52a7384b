"""Catalog curation through HTTP: an Organization pushes a Blueprint to its shared-blueprints
repo, proposes it to the Sovereign catalog, an operator reviews it (validation, diff against
the last published version) and publishes it (a commit to catalog-sovereign, then every
Organization sees it) or rejects it with a reason. Audit events throughout."""

from __future__ import annotations

import pytest
import yaml

from core.models import AuditEvent
from gitops.backend import Author
from gitops.sync import backend, ensure_repo
from marketplace import loader
from marketplace.models import Blueprint, CatalogProposal
from tests.gitutil import commits, show
from tests.marketplace.conftest import blueprint_doc

pytestmark = pytest.mark.django_db
AUTHOR = Author("Acme", "ops@acme.test")


def _push(org: str, *docs: dict, message: str = "add") -> None:
    """The Organization commits Blueprint files to its shared-blueprints repo."""
    ensure_repo(org, "shared-blueprints")
    git = backend()
    head = git.read_tree(org, "shared-blueprints", "main", "").head
    changes = {f"{docs[0]['metadata']['name']}.yaml": yaml.safe_dump_all(docs).encode()}
    git.commit(
        org,
        "shared-blueprints",
        "main",
        changes=changes,
        expected_head=head,
        author=AUTHOR,
        message=message,
    )
    for source in loader.ensure_sources():
        loader.sync_source(source)


def _kanban(version: str, summary: str = "Boards for teams.") -> dict:
    doc = blueprint_doc("bp-kanban", version)
    doc["spec"]["card"]["summary"] = summary
    doc["spec"]["manifests"]["chart"] = {
        "repository": "oci://registry-1.docker.io/bitnamicharts",
        "name": "valkey",
        "version": "2.0.1",
    }
    doc["spec"]["configSchema"] = {
        "type": "object",
        "properties": {"persistence": {"type": "boolean", "default": True}},
    }
    doc["spec"]["manifests"]["valuesMap"] = {"persistence": "primary.persistence.enabled"}
    doc["spec"]["examples"] = [{"name": "no disk", "values": {"persistence": False}}]
    return doc


def test_propose_review_publish_then_every_organization_sees_it(
    catalog, cast, client_for, on_commit
):
    _push("acme", _kanban("1.0.0"))
    bp = Blueprint.objects.get(name="bp-kanban")
    assert bp.visibility == "private" and bp.owner.slug == "acme"
    globex = client_for(cast["member_b"])
    assert globex.get("/marketplace/bp-kanban/").status_code == 404  # private to acme
    admin = client_for(cast["admin"])
    page = admin.get("/marketplace/bp-kanban/").content.decode()
    assert "Propose to the Sovereign catalog" in page
    # wrong roles: a viewer of acme may not propose, another Organization does not see it
    assert client_for(cast["viewer"]).post("/marketplace/bp-kanban/propose/").status_code == 403
    assert globex.post("/marketplace/bp-kanban/propose/").status_code == 404
    assert not CatalogProposal.objects.exists()
    assert admin.post("/marketplace/bp-kanban/propose/").status_code == 302
    proposal = CatalogProposal.objects.get()
    assert proposal.state == "pending" and proposal.versions == ["1.0.0"]
    again = admin.post("/api/v1/blueprints/bp-kanban/propose")
    assert again.status_code == 409 and "already waiting" in again.json()["errors"]["blueprint"][0]
    # the review queue is the operators' (404 for everyone else, as all operator pages)
    assert admin.get("/marketplace/curation/").status_code == 404
    assert client_for(cast["owner"]).get(f"/marketplace/curation/{proposal.pk}/").status_code == 404
    operator = client_for(cast["sovereign_operator"])
    assert "bp-kanban" in operator.get("/marketplace/curation/").content.decode()
    review = operator.get(f"/marketplace/curation/{proposal.pk}/").content.decode()
    assert "data-valid" in review and "New in the Sovereign catalog" in review
    assert "+++ b/bp-kanban/blueprint.yaml" in review and "+  visibility: listed" in review
    assert (
        client_for(cast["owner"])
        .post(f"/marketplace/curation/{proposal.pk}/", {"action": "publish"})
        .status_code
        == 404
    )
    with on_commit():
        done = operator.post(f"/marketplace/curation/{proposal.pk}/", {"action": "publish"})
    assert done.status_code == 302
    proposal.refresh_from_db()
    assert proposal.state == "published" and proposal.last_commit_sha
    assert (
        commits("system", "catalog-sovereign")[0]
        == "catalog.publish: Blueprint bp-kanban from acme"
    )
    published = list(
        yaml.safe_load_all(show("bp-kanban/blueprint.yaml", "system", "catalog-sovereign"))
    )
    assert published[0]["spec"]["visibility"] == "listed" and "owner" not in published[0]["spec"]
    bp.refresh_from_db()
    assert bp.source.name == "catalog-sovereign" and bp.owner is None and bp.visibility == "listed"
    assert globex.get("/marketplace/bp-kanban/").status_code == 200
    assert "bp-kanban" in {b["name"] for b in globex.get("/api/v1/blueprints/").json()}
    assert list(
        AuditEvent.objects.filter(target_type="marketplace.catalogproposal")
        .values_list("action", flat=True)
        .order_by("id")
    ) == [
        "catalog.propose",
        "catalog.publish",
        "catalog.commit",
    ]


def test_a_new_version_is_diffed_against_the_published_one_and_can_be_rejected(
    catalog, cast, client_for, on_commit
):
    _push("acme", _kanban("1.0.0"))
    admin, operator = client_for(cast["admin"]), client_for(cast["sovereign_operator"])
    first = admin.post("/api/v1/blueprints/bp-kanban/propose").json()
    with on_commit():
        assert operator.post(f"/api/v1/catalog/proposals/{first['id']}/publish").status_code == 202
    # acme adds 1.1.0 to its repo and proposes the update from the now public Blueprint's page;
    # the operator sees only what changes against the published version
    _push(
        "acme", _kanban("1.0.0"), _kanban("1.1.0", summary="Boards and timelines."), message="1.1"
    )
    page = admin.get("/marketplace/bp-kanban/").content.decode()
    assert "Propose to the Sovereign catalog" in page and 'data-proposal="published"' in page
    assert (
        "Propose to the Sovereign catalog"
        not in client_for(cast["member_b"]).get("/marketplace/bp-kanban/").content.decode()
    )
    assert client_for(cast["member_b"]).post("/marketplace/bp-kanban/propose/").status_code == 404
    made = admin.post("/api/v1/blueprints/bp-kanban/propose")
    assert made.status_code == 201 and made.json()["versions"] == ["1.0.0", "1.1.0"]
    proposal = CatalogProposal.objects.get(pk=made.json()["id"])
    review = operator.get(f"/api/v1/catalog/proposals/{proposal.pk}/").json()
    assert review["new"] is False and review["problems"] == []
    assert "+    summary: Boards and timelines." in review["diff"]  # the new version
    assert "-    summary: Boards for teams." not in review["diff"]  # 1.0.0 is unchanged
    empty = operator.post(
        f"/api/v1/catalog/proposals/{proposal.pk}/reject",
        {"reason": " "},
        content_type="application/json",
    )
    assert empty.status_code == 400
    assert (
        client_for(cast["admin"])
        .post(
            f"/api/v1/catalog/proposals/{proposal.pk}/reject",
            {"reason": "x"},
            content_type="application/json",
        )
        .status_code
        == 404
    )
    rejected = operator.post(
        f"/api/v1/catalog/proposals/{proposal.pk}/reject",
        {"reason": "Pin the chart to a released version."},
        content_type="application/json",
    )
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    event = AuditEvent.objects.get(action="catalog.reject")
    assert (
        event.org_slug == "acme" and event.after["reason"] == "Pin the chart to a released version."
    )
    assert operator.post(f"/api/v1/catalog/proposals/{proposal.pk}/publish").status_code == 409
    assert len(commits("system", "catalog-sovereign")) == 2  # README + the first publication


def test_a_proposal_whose_chart_values_do_not_exist_cannot_be_published(catalog, cast, client_for):
    doc = _kanban("1.0.0")
    doc["spec"]["manifests"]["valuesMap"] = {"persistence": "primary.persistance.enabled"}
    _push("acme", doc)
    proposal = client_for(cast["admin"]).post("/api/v1/blueprints/bp-kanban/propose").json()
    operator = client_for(cast["sovereign_operator"])
    review = operator.get(f"/api/v1/catalog/proposals/{proposal['id']}/").json()
    assert review["problems"] == [
        "document 1 (no disk): primary.persistance: not a value of valkey 2.0.1"
    ]
    refused = operator.post(f"/api/v1/catalog/proposals/{proposal['id']}/publish")
    assert refused.status_code == 400 and CatalogProposal.objects.get().state == "pending"
    assert commits("system", "catalog-sovereign") == []
