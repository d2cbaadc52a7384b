"""Day-2 changes through HTTP, each a Git commit with a preview diff and an audit event: size,
placement (add or remove a region, single-region ↔ active-hotstandby, switchover), rollback to an
earlier revision, upgrade with its changelog and downgrade where allowed, and uninstall offering
the dependencies nothing else uses. The wrong roles are refused and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from core.models import AuditEvent, OutboxItem
from marketplace.models import Application
from orgs.models import HostCluster
from tests.gitutil import commits, files, git, show

pytestmark = pytest.mark.django_db
API = "/api/v1/orgs/acme/environments/acme-prod/applications/"
UI = "/marketplace/apps/acme-prod/"
FSN, HEL = "hz-fsn-rtz-prod", "hz-hel-rtz-prod"


def _install(client: Any, on_commit: Any, name: str, blueprint: str, **body: Any) -> dict:
    with on_commit():
        response = client.post(
            API, {"name": name, "blueprint": blueprint, **body}, content_type="application/json"
        )
    assert response.status_code == 201, response.json()
    return response.json()


def _values(app: str, region: str = FSN) -> dict:
    return yaml.safe_load(show(f"overlays/acme-prod/{region}/values.yaml", "acme", app))


def _role(app: str, region: str) -> str:
    path = f"overlays/acme-prod/{region}/helmrelease.yaml"
    release = list(yaml.safe_load_all(show(path, "acme", app)))[1]
    return release["metadata"]["annotations"]["catalyst.openova.io/role"]


def _nothing_written(before_commits: list[str], app: str) -> None:
    assert commits("acme", app) == before_commits


@pytest.fixture
def two_regions(acme_prod):
    acme_prod.regions.add(HostCluster.objects.get(name=HEL))
    return acme_prod


def test_size_change_previews_then_commits(catalog, cast, client_for, on_commit):
    admin = client_for(cast["admin"])
    _install(admin, on_commit, "cache", "bp-valkey")
    before = commits("acme", "cache")
    page = admin.post(UI + "cache/size/", {"size": "large"})
    html = page.content.decode()
    assert page.status_code == 200 and "Confirm and commit" in html
    assert "-      memory: 128Mi\n+      cpu: &#x27;1&#x27;\n+      memory: 2Gi" in html
    assert "OMR 9.450" in html  # the new monthly extra: large 9.000 + tax
    _nothing_written(before, "cache")
    # wrong roles: the viewer may read but not change (403); the developer cannot see prod (404)
    assert (
        client_for(cast["viewer"])
        .post(UI + "cache/size/", {"size": "large", "confirm": "1"})
        .status_code
        == 403
    )
    assert (
        client_for(cast["developer"]).post(UI + "cache/size/", {"size": "large"}).status_code == 404
    )
    _nothing_written(before, "cache")
    with on_commit():
        done = admin.post(UI + "cache/size/", {"size": "large", "confirm": "1"})
    assert done.status_code == 302
    assert commits("acme", "cache")[0] == "applications.resize: application acme-prod/cache"
    assert _values("cache")["primary"]["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}}
    event = AuditEvent.objects.filter(action="applications.resize").get()
    assert event.before["size"] == "small" and event.after["size"] == "large"
    assert Application.objects.get(name="cache").size == "large"
    # through the API: a preview writes nothing, the same size is a no-op
    preview = admin.post(
        API + "cache/resize", {"size": "medium", "preview": True}, content_type="application/json"
    )
    assert preview.status_code == 200 and preview.json()["price"]["total"] == "OMR 4.200"
    assert any("values.yaml" in f["path"] and "512Mi" in f["diff"] for f in preview.json()["files"])
    with on_commit():
        same = admin.post(API + "cache/resize", {"size": "large"}, content_type="application/json")
    assert same.status_code == 200 and len(commits("acme", "cache")) == len(before) + 1


def test_placement_single_to_hotstandby_and_back(catalog, cast, client_for, on_commit, two_regions):
    admin = client_for(cast["admin"])
    _install(admin, on_commit, "pgsql", "bp-cnpg", values={"instances": 3})
    body = {"placement": "active-hotstandby", "regions": [FSN, HEL]}
    preview = admin.post(
        API + "pgsql/placement", {**body, "preview": True}, content_type="application/json"
    )
    assert preview.status_code == 200
    paths = {f["path"]: f["status"] for f in preview.json()["files"]}
    assert paths[f"overlays/acme-prod/{HEL}/values.yaml"] == "added"
    assert paths[f"applications/acme/acme-prod/pgsql/kustomization-{HEL}.yaml"] == "added"
    assert (
        preview.json()["price"]["total"] == "OMR 6.300"
    )  # small (in the plan) + a standby region 6.000
    assert f"overlays/acme-prod/{HEL}/values.yaml" not in files("acme", "pgsql")
    denied = client_for(cast["viewer"]).post(
        API + "pgsql/placement", body, content_type="application/json"
    )
    assert denied.status_code == 403
    with on_commit():
        moved = admin.post(API + "pgsql/placement", body, content_type="application/json")
    assert moved.status_code == 200 and moved.json()["regions"] == [FSN, HEL]
    assert commits("acme", "pgsql")[0] == "applications.placement: application acme-prod/pgsql"
    assert _values("pgsql", HEL)["cluster"]["instances"] == 1  # the Blueprint's standby values
    assert _values("pgsql", FSN)["cluster"]["instances"] == 3
    assert (_role("pgsql", FSN), _role("pgsql", HEL)) == ("active", "standby")
    assert f"applications/acme/acme-prod/pgsql/kustomization-{HEL}.yaml" in files()
    # not allowed by the Blueprint or the Environment: clear errors, nothing written
    bad = admin.post(
        API + "pgsql/placement",
        {"placement": "active-active", "regions": [FSN, HEL]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "allows only" in bad.json()["errors"]["placement"][0]
    bad = admin.post(
        API + "pgsql/placement",
        {"placement": "single-region", "regions": ["hz-fsn-rtz-dev"]},
        content_type="application/json",
    )
    assert (
        bad.status_code == 400 and "Not a region of acme-prod" in bad.json()["errors"]["regions"][0]
    )
    # back to one region (the UI: preview, then confirm): the standby region's files go
    form = {"placement": "single-region", "active": FSN}
    page = admin.post(UI + "pgsql/placement/", form)
    assert page.status_code == 200 and "deleted" in page.content.decode()
    with on_commit():
        assert admin.post(UI + "pgsql/placement/", {**form, "confirm": "1"}).status_code == 302
    assert not [f for f in files("acme", "pgsql") if HEL in f]
    assert f"applications/acme/acme-prod/pgsql/kustomization-{HEL}.yaml" not in files()
    assert AuditEvent.objects.filter(action="applications.placement").count() == 2


def test_switchover_makes_the_standby_active(catalog, cast, client_for, on_commit, two_regions):
    admin = client_for(cast["admin"])
    _install(
        admin,
        on_commit,
        "pgsql",
        "bp-cnpg",
        placement="active-hotstandby",
        regions=[FSN, HEL],
        values={"instances": 2},
    )
    assert (_role("pgsql", FSN), _role("pgsql", HEL)) == ("active", "standby")
    page = admin.get(UI + "pgsql/switchover/").content.decode()
    assert f'<option value="{HEL}">' in page and f'<option value="{FSN}">' not in page
    assert (
        client_for(cast["viewer"])
        .post(UI + "pgsql/switchover/", {"region": HEL, "confirm": "1"})
        .status_code
        == 403
    )
    preview = admin.post(UI + "pgsql/switchover/", {"region": HEL})
    assert (
        preview.status_code == 200
        and "catalyst.openova.io/role: active" in preview.content.decode()
    )
    with on_commit():
        assert (
            admin.post(UI + "pgsql/switchover/", {"region": HEL, "confirm": "1"}).status_code == 302
        )
    assert (_role("pgsql", FSN), _role("pgsql", HEL)) == ("standby", "active")
    assert (
        _values("pgsql", HEL)["cluster"]["instances"] == 2
        and _values("pgsql", FSN)["cluster"]["instances"] == 1
    )
    assert commits("acme", "pgsql")[0] == "applications.switchover: application acme-prod/pgsql"
    again = admin.post(API + "pgsql/switchover", {"region": HEL}, content_type="application/json")
    assert (
        again.status_code == 400
        and "already the active region" in again.json()["errors"]["region"][0]
    )


def _tree(app: str, ref: str) -> dict[str, str]:
    """The app's files at a commit, read with the git CLI."""
    names = git("acme", app, "ls-tree", "-r", "--name-only", ref).split()
    return {n: git("acme", app, "show", f"{ref}:{n}") for n in names if n.startswith("overlays/")}


def test_rollback_to_an_earlier_revision_restores_its_files(catalog, cast, client_for, on_commit):
    admin = client_for(cast["admin"])
    _install(admin, on_commit, "cache", "bp-valkey")
    with on_commit():
        admin.post(API + "cache/resize", {"size": "medium"}, content_type="application/json")
    with on_commit():
        admin.patch(
            API + "cache/",
            {"values": {"architecture": "replication"}},
            content_type="application/json",
        )
    revisions = admin.get(API + "cache/revisions").json()
    assert [(r["revision"], r["action"], r["size"]) for r in revisions] == [
        (3, "applications.update", "medium"),
        (2, "applications.resize", "medium"),
        (1, "applications.install", "small"),
    ]
    first = revisions[-1]["commit"]
    assert client_for(cast["viewer"]).get(API + "cache/revisions").status_code == 200
    assert (
        client_for(cast["viewer"])
        .post(API + "cache/rollback", {"revision": 1}, content_type="application/json")
        .status_code
        == 403
    )
    assert (
        client_for(cast["member_b"])
        .post(API + "cache/rollback", {"revision": 1}, content_type="application/json")
        .status_code
        == 404
    )
    preview = admin.post(
        API + "cache/rollback", {"revision": 1, "preview": True}, content_type="application/json"
    )
    assert preview.status_code == 200 and preview.json()["files"]
    current = admin.post(API + "cache/rollback", {"revision": 3}, content_type="application/json")
    assert current.status_code == 400 and "current one" in current.json()["errors"]["revision"][0]
    with on_commit():
        done = admin.post(API + "cache/rollback", {"revision": 1}, content_type="application/json")
    assert done.status_code == 200 and done.json()["size"] == "small"
    assert done.json()["values"]["architecture"] == "standalone"
    head = commits("acme", "cache")
    assert head[0] == "applications.rollback: application acme-prod/cache" and len(head) == 5
    assert _tree("cache", "main") == _tree("cache", first)  # a new commit restoring those files
    event = AuditEvent.objects.get(action="applications.rollback")
    assert event.before["size"] == "medium" and event.after["size"] == "small"
    # the UI: the revisions page lists them, rollback previews then commits
    page = admin.get(UI + "cache/revisions/").content.decode()
    assert (
        'data-revision="4"' in page and "applications.rollback" in page and "Roll back to 2" in page
    )
    preview = admin.post(UI + "cache/rollback/", {"revision": "2"})
    assert preview.status_code == 200 and "Confirm and commit" in preview.content.decode()
    with on_commit():
        assert (
            admin.post(UI + "cache/rollback/", {"revision": "2", "confirm": "1"}).status_code == 302
        )
    assert Application.objects.get(name="cache").size == "medium"


def test_upgrade_shows_its_changelog_and_downgrade_is_allowed_only_where_declared(
    catalog, cast, client_for, on_commit
):
    admin = client_for(cast["admin"])
    values = {"domain": "blog.acme.test", "admin": {"email": "ops@acme.test"}}
    _install(admin, on_commit, "blog", "bp-wordpress", version="1.0.0", values=values)
    offer = admin.get(API + "blog/upgrade").json()
    assert offer["current"] == "1.0.0" and [u["version"] for u in offer["upgrades"]] == ["1.1.0"]
    assert offer["downgrades"] == [] and "23.1.0" in offer["upgrades"][0]["changelog"][0]["notes"]
    preview = admin.post(
        API + "blog/upgrade", {"version": "1.1.0", "preview": True}, content_type="application/json"
    )
    assert preview.status_code == 200 and preview.json()["changelog"][0]["version"] == "1.1.0"
    diffs = "".join(f["diff"] for f in preview.json()["files"])
    assert "-      version: 22.4.0" in diffs and "+      version: 23.1.0" in diffs
    assert Application.objects.get(name="blog").version == "1.0.0"
    assert (
        client_for(cast["viewer"])
        .post(API + "blog/upgrade", {"version": "1.1.0"}, content_type="application/json")
        .status_code
        == 403
    )
    with on_commit():
        assert (
            admin.post(
                API + "blog/upgrade", {"version": "1.1.0"}, content_type="application/json"
            ).status_code
            == 200
        )
    with on_commit():
        assert (
            admin.post(
                API + "blog/upgrade", {"version": "2.0.0"}, content_type="application/json"
            ).status_code
            == 200
        )
    refused = admin.post(
        API + "blog/upgrade", {"version": "1.1.0"}, content_type="application/json"
    )
    assert refused.status_code == 400
    assert "2.0.0 can go back only to no older version" in refused.json()["errors"]["version"][0]
    # bp-cnpg 1.5 declares downgradeTo ~1.4: the downgrade is a commit audited as such
    _install(admin, on_commit, "pgsql", "bp-cnpg", version="1.5.0")
    page = admin.get(UI + "pgsql/upgrade/").content.decode()
    assert "1.4.0 (downgrade)" in page and "Moving to 1.4.0" in page
    with on_commit():
        done = admin.post(UI + "pgsql/upgrade/", {"version": "1.4.0", "confirm": "1"})
    assert done.status_code == 302 and Application.objects.get(name="pgsql").version == "1.4.0"
    assert commits("acme", "pgsql")[0] == "applications.downgrade: application acme-prod/pgsql"
    assert AuditEvent.objects.filter(action="applications.downgrade").count() == 1


def test_uninstall_offers_the_dependencies_nothing_else_uses(catalog, cast, client_for, on_commit):
    admin = client_for(cast["admin"])
    values = {"domain": "blog.acme.test", "admin": {"email": "ops@acme.test"}}
    _install(admin, on_commit, "blog", "bp-wordpress", values=values)
    _install(
        admin,
        on_commit,
        "shop",
        "bp-wordpress",
        values={**values, "domain": "shop.acme.test"},
        dependencies={"db": "blog-db"},
    )
    assert admin.get(API + "blog/").json()["unused_dependencies"] == []  # shop uses blog-db too
    with on_commit():
        assert admin.delete(API + "shop/").status_code == 202  # removed once committed
    assert admin.get(API + "blog/").json()["unused_dependencies"] == ["blog-db"]
    page = admin.get(UI + "blog/uninstall/").content.decode()
    assert 'name="remove_dependencies" value="blog-db"' in page and "nothing else uses" in page
    denied = client_for(cast["viewer"]).post(
        UI + "blog/uninstall/", {"confirm": "blog", "remove_dependencies": ["blog-db"]}
    )
    assert denied.status_code == 403 and Application.objects.filter(name="blog").exists()
    with on_commit():
        done = admin.post(
            UI + "blog/uninstall/", {"confirm": "blog", "remove_dependencies": ["blog-db"]}
        )
    assert done.status_code == 302
    assert not Application.objects.filter(name__in=["blog", "blog-db"]).exists()
    assert [f for f in files("acme", "blog") if f.startswith("overlays/")] == []
    assert [f for f in files("acme", "blog-db") if f.startswith("overlays/")] == []
    assert AuditEvent.objects.filter(action="applications.uninstall").count() == 3
    assert not OutboxItem.objects.filter(done_at__isnull=True).exists()
