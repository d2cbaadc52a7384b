from __future__ import annotations

import re

import pytest
import yaml
from django.core.exceptions import ValidationError

from core.models import AuditEvent
from gitops import naming
from gitops.validation import validate_manifest
from marketplace import changes, services
from marketplace.models import Application, BlueprintVersion
from tests.gitutil import commits, files, show
from tests.marketplace.conftest import GITEA_INSTALL_FORM

pytestmark = pytest.mark.django_db


def _version(name: str, version: str) -> BlueprintVersion:
    return BlueprintVersion.objects.get(blueprint__name=name, version=version)


def test_install_commits_app_repo_and_flux_objects_with_labels(catalog, cast, acme_prod, on_commit):
    with on_commit():
        app = services.install(
            by=cast["admin"],
            env=acme_prod,
            version=_version("bp-wordpress", "1.1.0"),
            name="blog",
            values={"domain": "blog.acme.test", "admin": {"email": "ops@acme.test"}},
        )
    app.refresh_from_db()
    db = Application.objects.get(environment=acme_prod, name="blog-db")
    assert app.state == "committed" and db.state == "committed"
    assert (
        app.dependencies == {"db": "blog-db"}
        and db.blueprint_version.blueprint.name == "bp-mariadb"
    )
    assert db.values["database"] == "wordpress"
    assert (
        app.last_commit_sha
        and commits("acme", "blog", "main")[0] == "applications.install: application acme-prod/blog"
    )
    root = "overlays/acme-prod/hz-fsn-rtz-prod/"
    assert sorted(files("acme", "blog", "main")) == sorted(
        # the base: the configuration (which people may edit and push), the root kustomization,
        # the secret references; then the Environment's overlay of its region
        ["README.md", "values.yaml", "kustomization.yaml", "secrets/externalsecret.yaml"]
        + [root + f for f in ("helmrelease.yaml", "kustomization.yaml", "values.yaml")]
    )
    docs = list(yaml.safe_load_all(show(root + "helmrelease.yaml", "acme", "blog", "main")))
    release = docs[1]
    assert release["kind"] == "HelmRelease" and validate_manifest(release) == []
    labels = release["metadata"]["labels"]
    assert (
        labels["openova.io/organization"] == "acme" and labels["openova.io/application"] == "blog"
    )
    assert (
        labels["openova.io/blueprint-version"] == "1.1.0"
        and labels["openova.io/host-cluster"] == "hz-fsn-rtz-prod"
    )
    assert labels["app.kubernetes.io/managed-by"] == "flux"
    secret_refs = [v for v in release["spec"]["valuesFrom"] if v["kind"] == "Secret"]
    assert secret_refs == [
        {
            "kind": "Secret",
            "name": "blog-credentials",
            "valuesKey": "admin-password",
            "targetPath": "wordpressPassword",
        },
        {  # the database's user password, wired from the dependency's own credentials
            "kind": "Secret",
            "name": "blog-db-credentials",
            "valuesKey": "password",
            "targetPath": "externalDatabase.password",
        },
    ]
    values = yaml.safe_load(show(root + "values.yaml", "acme", "blog", "main"))
    assert values["ingress"] == {"enabled": True, "hostname": "blog.acme.test"}
    assert "wordpressPassword" not in values and "password" not in values["externalDatabase"]
    assert values["externalDatabase"]["host"] == "blog-db" and values["mariadb"]["enabled"] is False
    config = "applications/acme/acme-prod/blog/kustomization-hz-fsn-rtz-prod.yaml"
    kust = yaml.safe_load(show(config))
    assert validate_manifest(kust) == [] and kust["spec"]["dependsOn"] == [
        {"name": naming.flux_object_name("acme", "acme-prod", "blog-db", "hz-fsn-rtz-prod")}
    ]
    assert AuditEvent.objects.filter(action="applications.install", org_slug="acme").count() == 2


def test_ui_catalog_form_plan_preview_install(catalog, cast, client_for, on_commit):
    client = client_for(cast["admin"])
    page = client.get("/marketplace/bp-gitea/install/")
    assert (
        page.status_code == 200 and b'name="domain"' in page.content and b"Advanced" in page.content
    )
    assert (
        b"generated in the cluster" in page.content
        and b'name="admin__password"' not in page.content
    )
    data = GITEA_INSTALL_FORM
    bad = client.post(
        "/marketplace/bp-gitea/install/?version=1.22.0", {**data, "domain": "not a domain"}
    )
    assert bad.status_code == 400 and b"Enter a domain like app.example.com." in bad.content
    response = client.post("/marketplace/bp-gitea/install/?version=1.22.0", data)
    assert response.status_code == 302
    plan_url = response["Location"]
    preview = client.get(plan_url)
    assert preview.status_code == 200
    assert b"acme/git@main:overlays/acme-prod/hz-fsn-rtz-prod/helmrelease.yaml" in preview.content
    assert b"+  name: git" in preview.content and b"git-db" in preview.content
    assert (
        Application.objects.count() == 0 and commits("acme", "git", "main") == []
    )  # preview writes nothing
    with on_commit():
        done = client.post(plan_url)
    assert done.status_code == 302 and done["Location"] == "/marketplace/apps/acme-prod/git/"
    app = Application.objects.get(name="git")
    assert app.state == "committed" and app.dependencies == {"db": "git-db"}
    detail = client.get(done["Location"])
    assert app.last_commit_sha.encode() in detail.content and b"Upgrade" not in detail.content
    assert client.post(plan_url).status_code == 409  # a plan installs once
    assert other_user_cannot_see_plan(client_for(cast["owner"]), plan_url)


def other_user_cannot_see_plan(client, url):
    return client.get(url).status_code == 404


def test_standby_region_renders_the_blueprints_standby_values(catalog, cast, acme_prod, on_commit):
    from orgs.models import HostCluster

    acme_prod.regions.add(HostCluster.objects.get(name="hz-hel-rtz-prod"))
    with on_commit():
        services.install(
            by=cast["admin"],
            env=acme_prod,
            version=_version("bp-cnpg", "1.5.0"),
            name="pgsql",
            values={"instances": 3},
            placement="active-hotstandby",
            regions=["hz-fsn-rtz-prod", "hz-hel-rtz-prod"],
        )
    active = yaml.safe_load(
        show("overlays/acme-prod/hz-fsn-rtz-prod/values.yaml", "acme", "pgsql", "main")
    )
    standby = yaml.safe_load(
        show("overlays/acme-prod/hz-hel-rtz-prod/values.yaml", "acme", "pgsql", "main")
    )
    assert active["cluster"]["instances"] == 3 and standby["cluster"]["instances"] == 1
    assert "replicaCount" not in standby  # the cluster chart has no such key
    for cluster, role in (("hz-fsn-rtz-prod", "active"), ("hz-hel-rtz-prod", "standby")):
        release = list(
            yaml.safe_load_all(
                show(f"overlays/acme-prod/{cluster}/helmrelease.yaml", "acme", "pgsql")
            )
        )[1]
        assert release["metadata"]["annotations"]["catalyst.openova.io/role"] == role
    for cluster in ("hz-fsn-rtz-prod", "hz-hel-rtz-prod"):
        kust = yaml.safe_load(
            show(f"applications/acme/acme-prod/pgsql/kustomization-{cluster}.yaml")
        )
        assert (
            validate_manifest(kust) == []
            and kust["spec"]["path"] == "./"
            and kust["spec"]["components"] == [f"./overlays/acme-prod/{cluster}"]
        )
    repo = yaml.safe_load(show("applications/acme/acme-prod/pgsql/gitrepository.yaml"))
    assert validate_manifest(repo) == [] and repo["spec"]["ref"]["branch"] == "main"


def test_dev_environment_commits_to_develop_branch(catalog, cast, acme_dev, on_commit):
    with on_commit():
        services.install(
            by=cast["admin"],
            env=acme_dev,
            version=_version("bp-valkey", "2.0.0"),
            name="cache",
            values={},
        )
    assert (
        commits("acme", "cache", "develop")[0] == "applications.install: application acme-dev/cache"
    )
    assert "overlays/acme-dev/hz-fsn-rtz-dev/values.yaml" in files("acme", "cache", "develop")


def test_change_values_commits_again_and_same_values_is_noop(catalog, cast, acme_prod, on_commit):
    with on_commit():
        app = services.install(
            by=cast["admin"],
            env=acme_prod,
            version=_version("bp-valkey", "2.0.0"),
            name="cache",
            values={},
        )
    with on_commit():
        changes.update_values(by=cast["operator"], app=app, values={"architecture": "replication"})
    assert commits("acme", "cache", "main")[0] == "applications.update: application acme-prod/cache"
    assert "replication" in Application.objects.get(pk=app.pk).values["architecture"]
    before = len(commits("acme", "cache", "main"))
    with on_commit():
        changes.update_values(
            by=cast["operator"],
            app=Application.objects.get(pk=app.pk),
            values={"architecture": "replication"},
        )
    assert len(commits("acme", "cache", "main")) == before


def test_upgrade_allowed_and_refused(catalog, cast, acme_prod, on_commit):
    values = {"domain": "blog.acme.test", "admin": {"email": "ops@acme.test"}}
    with on_commit():
        app = services.install(
            by=cast["admin"],
            env=acme_prod,
            version=_version("bp-wordpress", "1.0.0"),
            name="blog",
            values=values,
        )
    app = Application.objects.select_related(
        "blueprint_version__blueprint", "environment__organization"
    ).get(pk=app.pk)
    assert [v.version for v in changes.upgrade_targets(app)] == ["1.1.0"]
    with pytest.raises(ValidationError) as err:
        changes.upgrade(by=cast["admin"], app=app, version="2.0.0")
    assert "blocks upgrades from 1.0.0" in err.value.message_dict["version"][0]
    with pytest.raises(ValidationError) as err:
        changes.upgrade(by=cast["admin"], app=app, version="9.9.9")
    assert "no version “9.9.9”" in err.value.message_dict["version"][0]
    assert Application.objects.get(pk=app.pk).version == "1.0.0"
    with on_commit():
        changes.upgrade(by=cast["admin"], app=app, version="1.1.0")
    app.refresh_from_db()
    assert app.version == "1.1.0" and app.state == "committed"
    assert commits("acme", "blog", "main")[0] == "applications.upgrade: application acme-prod/blog"
    release = list(
        yaml.safe_load_all(
            show(
                "overlays/acme-prod/hz-fsn-rtz-prod/helmrelease.yaml",
                "acme",
                "blog",
                "main",
            )
        )
    )[1]
    assert release["spec"]["chart"]["spec"]["version"] == "23.1.0"
    assert release["metadata"]["labels"]["openova.io/blueprint-version"] == "1.1.0"
    with pytest.raises(ValidationError) as err:
        changes.upgrade(by=cast["admin"], app=app, version="1.1.0")
    assert err.value.message_dict["version"] == ["blog already runs 1.1.0."]
    # 1.1.0 declares `downgradeTo: ["~1.0"]`: back to 1.0.0 is allowed, audited as a downgrade
    assert [v.version for v in changes.downgrade_targets(app)] == ["1.0.0"]


def test_ui_upgrade_lists_refusals(catalog, cast, acme_prod, client_for, on_commit):
    with on_commit():
        services.install(
            by=cast["admin"],
            env=acme_prod,
            version=_version("bp-wordpress", "1.0.0"),
            name="blog",
            values={"domain": "b.acme.test", "admin": {"email": "a@b"}},
        )
    client = client_for(cast["admin"])
    page = client.get("/marketplace/apps/acme-prod/blog/upgrade/")
    assert page.status_code == 200 and b"2.0.0: 2.0.0 blocks upgrades from 1.0.0" in page.content
    assert (
        client.post("/marketplace/apps/acme-prod/blog/upgrade/", {"version": "2.0.0"}).status_code
        == 400
    )
    preview = client.post("/marketplace/apps/acme-prod/blog/upgrade/", {"version": "1.1.0"})
    assert preview.status_code == 200 and b"Confirm and commit" in preview.content
    assert re.search(rb"-\s+version: 22\.4\.0\n\+\s+version: 23\.1\.0", preview.content)
    assert Application.objects.get(name="blog").version == "1.0.0"  # a preview writes nothing
    with on_commit():
        done = client.post(
            "/marketplace/apps/acme-prod/blog/upgrade/", {"version": "1.1.0", "confirm": "1"}
        )
    assert done.status_code == 302
    assert Application.objects.get(name="blog").version == "1.1.0"


def test_uninstall_removes_files_and_row_without_cluster(
    catalog, cast, acme_prod, client_for, on_commit
):
    with on_commit():
        services.install(
            by=cast["admin"],
            env=acme_prod,
            version=_version("bp-wordpress", "1.1.0"),
            name="blog",
            values={"domain": "b.acme.test", "admin": {"email": "a@b"}},
        )
    client = client_for(cast["admin"])
    refused = client.post("/marketplace/apps/acme-prod/blog-db/uninstall/", {"confirm": "blog-db"})
    assert refused.status_code == 400 and b"blog depends on blog-db" in refused.content
    assert (
        client.post("/marketplace/apps/acme-prod/blog/uninstall/", {"confirm": "wrong"}).status_code
        == 400
    )
    assert Application.objects.get(name="blog").state == "committed"
    with on_commit():
        done = client.post("/marketplace/apps/acme-prod/blog/uninstall/", {"confirm": "blog"})
    assert done.status_code == 302
    assert not Application.objects.filter(name="blog").exists()
    assert (
        commits("acme", "blog", "main")[0] == "applications.uninstall: application acme-prod/blog"
    )
    assert files("acme", "blog", "main") == ["README.md"]
    assert not [f for f in files() if f.startswith("applications/acme/acme-prod/blog/")]
    assert [f for f in files() if f.startswith("applications/acme/acme-prod/blog-db/")]
    assert AuditEvent.objects.filter(action="applications.drained").count() == 1


def test_uninstall_waits_for_drain_when_cluster_connected(
    catalog, cast, acme_prod, settings, on_commit
):
    settings.FLUX_CLUSTER_CONNECTED = True
    with on_commit():
        app = services.install(
            by=cast["admin"],
            env=acme_prod,
            version=_version("bp-valkey", "2.0.0"),
            name="cache",
            values={},
        )
    with on_commit():
        changes.uninstall(by=cast["admin"], app=app)
    app.refresh_from_db()
    assert app.state == "uninstalling" and files("acme", "cache", "main") == ["README.md"]
    assert services.mark_drained(app) is True
    assert not Application.objects.filter(pk=app.pk).exists()


def test_install_form_follows_the_chosen_environment(catalog, cast, client_for, on_commit):
    with on_commit():
        services.install(
            by=cast["admin"],
            env=cast["acme"].environments.get(env_type="prod"),
            version=_version("bp-cnpg", "1.5.0"),
            name="shared-pg",
            values={},
        )
    client = client_for(cast["admin"])
    prod = client.get(
        "/marketplace/bp-keycloak/install/?environment=acme-prod", HTTP_HX_REQUEST="true"
    )
    assert (
        b'value="hz-fsn-rtz-prod"' in prod.content and b'value="hz-fsn-rtz-dev"' not in prod.content
    )
    assert (
        b"Use existing \xe2\x80\x9cshared-pg\xe2\x80\x9d" in prod.content
        and b'hx-select="#install-form"' in prod.content
    )
    dev = client.get("/marketplace/bp-keycloak/install/?environment=acme-dev")
    assert b'value="hz-fsn-rtz-dev"' in dev.content and b"shared-pg" not in dev.content
