from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from marketplace.models import Blueprint, BlueprintVersion, CatalogSyncError
from tests.marketplace.conftest import blueprint_doc

pytestmark = pytest.mark.django_db


def test_starter_catalog_has_realistic_blueprints(catalog):
    names = set(Blueprint.objects.values_list("name", flat=True))
    assert len(names) >= 12
    assert {
        "bp-wordpress",
        "bp-cnpg",
        "bp-valkey",
        "bp-gitea",
        "bp-keycloak",
        "bp-grafana",
        "bp-nextcloud",
        "bp-matrix",
        "bp-librechat",
    } <= names
    assert len(set(Blueprint.objects.values_list("category", flat=True))) >= 5
    wordpress = Blueprint.objects.get(name="bp-wordpress")
    assert wordpress.latest_version == "2.0.0" and wordpress.versions.count() == 3
    v2 = BlueprintVersion.objects.get(blueprint=wordpress, version="2.0.0")
    assert v2.upgrades == {"from": ["^1.1"], "blocks": ["~1.0"]}
    assert v2.spec["card"]["title"] == "WordPress"  # inherited from the first document in the file
    gitea = BlueprintVersion.objects.get(blueprint__name="bp-gitea", version="1.22.0")
    assert {k: v for k, v in gitea.depends[0].items() if k != "wiring"} == {
        "blueprint": "bp-cnpg",
        "range": "^1.4",
        "alias": "db",
        "values": {"database": "gitea", "owner": "gitea"},
    }
    assert gitea.depends[0]["wiring"]["gitea.config.database.NAME"] == "db.database"
    assert "changelog" not in BlueprintVersion.objects.get(  # one version's notes only
        blueprint__name="bp-cnpg", version="1.5.0"
    ).spec.get("upgrades", {})
    assert gitea.chart["repository"] == "https://dl.gitea.com/charts/"
    assert CatalogSyncError.objects.count() == 0


def test_broken_file_is_reported_and_skipped_rest_syncs(publish):
    result = publish(
        blueprint_doc("bp-good", "1.0.0"),
        files={
            "broken-yaml.yaml": "apiVersion: [unclosed",
            "bad-version.yaml": "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata: {name: bp-bad}\nspec:\n  version: one\n  card: {title: B, summary: s, category: x1}\n  manifests: {chart: {repository: 'https://x.test', name: b, version: '1'}}\n",
            "bad-when.yaml": "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata: {name: bp-badwhen}\nspec:\n  version: 1.0.0\n  card: {title: B, summary: s, category: x1}\n  depends: [{blueprint: bp-good, range: '^1', when: '__import__(1)'}]\n  manifests: {chart: {repository: 'https://x.test', name: b, version: '1'}}\n",
        },
    )
    assert result["errors"] == 3 and result["blueprints"] == 1
    assert Blueprint.objects.filter(name="bp-good").exists()
    assert not Blueprint.objects.filter(name__in=["bp-bad", "bp-badwhen"]).exists()
    errors = dict(CatalogSyncError.objects.values_list("path", "error"))
    assert "not valid YAML" in errors["broken-yaml.yaml"]
    assert (
        "spec.version" in errors["bad-version.yaml"]
        and "semantic version" in errors["bad-version.yaml"]
    )
    assert "spec.depends[0].when" in errors["bad-when.yaml"]


def test_resync_is_idempotent_and_removes_deleted_versions(publish, tmp_path):
    from marketplace import loader
    from marketplace.models import CatalogSource

    publish(blueprint_doc("bp-one", "1.0.0"), blueprint_doc("bp-one", "1.1.0"))
    assert publish() == {"unchanged": 1}  # nothing changed: not read again
    forced = loader.sync_source(CatalogSource.objects.get(name="extra"), force=True)
    assert forced["created"] == forced["removed"] == 0  # read again: nothing to do
    (tmp_path / "extra-catalog" / "bp-one-1.1.0.yaml").unlink()
    result = publish()
    assert result["removed"] == 1
    assert list(
        BlueprintVersion.objects.filter(blueprint__name="bp-one").values_list("version", flat=True)
    ) == ["1.0.0"]
    assert Blueprint.objects.get(name="bp-one").latest_version == "1.0.0"


def test_sync_catalog_command_reports_errors(db, tmp_path):
    (tmp_path / "ok.yaml").write_text(
        "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata: {name: bp-ok}\nspec:\n  version: 1.0.0\n  card: {title: Ok, summary: s, category: misc}\n  manifests: {chart: {repository: 'https://charts.example.test', name: ok, version: '1'}}\n"
    )
    (tmp_path / "nope.yaml").write_text("kind: Blueprint\n")
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_catalog", directory=str(tmp_path), stdout=out, stderr=err)
    assert "blueprints 1" in out.getvalue() and "errors 1" in out.getvalue()
    assert "nope.yaml" in err.getvalue()


def test_sync_errors_page_is_for_operators(publish, cast, client_for):
    publish(files={"x.yaml": "- not a mapping"})
    page = client_for(cast["sovereign_operator"]).get("/marketplace/sync-errors/")
    assert page.status_code == 200 and b"x.yaml" in page.content
    assert client_for(cast["owner"]).get("/marketplace/sync-errors/").status_code == 404


def test_org_shared_blueprints_repo_publishes_private_blueprints(
    catalog, cast, client_for, on_commit
):
    from gitops.backend import Author
    from gitops.sync import Desired, sync
    from marketplace import loader

    doc = "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata: {name: bp-acme-crm}\nspec:\n  version: 1.0.0\n  visibility: listed\n  card: {title: Acme CRM, summary: Our CRM, category: crm}\n  manifests: {chart: {repository: 'https://charts.acme.test', name: crm, version: '1.0.0'}}\n"
    sync(
        Desired(
            owner="acme",
            repo="shared-blueprints",
            branch="main",
            root="blueprints/",
            files={"blueprints/crm.yaml": doc},
        ),
        author=Author("t", "t@example.test"),
        message="add crm",
    )
    results = loader.sync_all()
    assert results["org:acme"]["blueprints"] == 1
    bp = Blueprint.objects.get(name="bp-acme-crm")
    assert bp.visibility == "private" and bp.owner.slug == "acme"  # an Org cannot list publicly
    assert client_for(cast["viewer"]).get("/marketplace/bp-acme-crm/").status_code == 200
    assert client_for(cast["member_b"]).get("/marketplace/bp-acme-crm/").status_code == 404


def test_load_demo_syncs_the_catalog(db):
    call_command("load_demo", stdout=io.StringIO())
    assert Blueprint.objects.count() >= 12 and CatalogSyncError.objects.count() == 0


def _orgs(count: int) -> None:
    from orgs.models import Organization

    Organization.objects.bulk_create(
        Organization(slug=f"bulk-{i:04d}", display_name=f"Bulk {i}") for i in range(count)
    )


def _queries_of_a_sync() -> tuple[int, dict[str, dict[str, int]]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from marketplace import loader

    with CaptureQueriesContext(connection) as queries:
        results = loader.sync_all()
    return len(queries), results


def test_catalog_sync_is_incremental_only_changed_sources_are_read(catalog, cast):
    from gitops.backend import Author
    from gitops.sync import Desired, sync

    _orgs(40)
    _queries_of_a_sync()  # the first sync reads every source
    # Nothing changed: the periodic sync costs a few queries, not a walk of every Organization.
    queries, results = _queries_of_a_sync()
    assert queries <= 12, queries
    assert results["org:bulk-0007"] == {"unchanged": 1}
    assert results["public"] == {"unchanged": 1}
    from orgs.models import Organization

    Organization.objects.bulk_create(
        Organization(slug=f"more-{i:04d}", display_name=f"More {i}") for i in range(40)
    )
    _queries_of_a_sync()  # the new Organizations' sources are read once
    queries, _ = _queries_of_a_sync()
    assert queries <= 12, queries  # does not grow with the number of Organizations

    # A commit on one Organization's repo: that source (only) is read again.
    doc = "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata: {name: bp-bulk-crm}\nspec:\n  version: 1.0.0\n  card: {title: CRM, summary: A CRM, category: crm}\n  manifests: {chart: {repository: 'https://charts.acme.test', name: crm, version: '1.0.0'}}\n"
    sync(
        Desired(
            owner="bulk-0007",
            repo="shared-blueprints",
            branch="main",
            root="blueprints/",
            files={"blueprints/crm.yaml": doc},
        ),
        author=Author("t", "t@example.test"),
        message="add crm",
    )
    _, results = _queries_of_a_sync()
    assert results["org:bulk-0007"]["blueprints"] == 1
    assert results["org:bulk-0008"] == {"unchanged": 1}
    assert Blueprint.objects.get(name="bp-bulk-crm").owner.slug == "bulk-0007"


def test_a_source_whose_org_is_archived_is_no_longer_synced(catalog, cast):
    from orgs.models import Organization, OrgState

    _orgs(3)
    _queries_of_a_sync()
    Organization.objects.filter(slug="bulk-0001").update(state=OrgState.ARCHIVED)
    _, results = _queries_of_a_sync()
    assert "org:bulk-0001" not in results and "org:bulk-0002" in results
