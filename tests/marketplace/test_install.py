from __future__ import annotations

import pytest
import yaml

from core.models import AuditEvent
from gitops.validation import validate_manifest
from marketplace import services
from marketplace.models import Application, BlueprintVersion
from tests.gitutil import commits, files, show

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
    assert app.dependencies == {"db": "blog-db"} and db.blueprint_version.blueprint.name == "bp-mariadb"
    assert db.values["database"] == "wordpress"
    assert app.last_commit_sha and commits("acme", "blog", "main")[0] == "applications.install: application acme-prod/blog"
    root = "clusters/hz-fsn-rtz-prod/applications/blog/"
    assert sorted(files("acme", "blog", "main")) == sorted(
        ["README.md"] + [root + f for f in ("externalsecret.yaml", "helmrelease.yaml", "kustomization.yaml", "values.yaml")]
    )
    docs = list(yaml.safe_load_all(show(root + "helmrelease.yaml", "acme", "blog", "main")))
    release = docs[1]
    assert release["kind"] == "HelmRelease" and validate_manifest(release) == []
    labels = release["metadata"]["labels"]
    assert labels["openova.io/organization"] == "acme" and labels["openova.io/application"] == "blog"
    assert labels["openova.io/blueprint-version"] == "1.1.0" and labels["openova.io/host-cluster"] == "hz-fsn-rtz-prod"
    assert labels["app.kubernetes.io/managed-by"] == "flux"
    secret_refs = [v for v in release["spec"]["valuesFrom"] if v["kind"] == "Secret"]
    assert secret_refs == [{"kind": "Secret", "name": "blog-credentials", "valuesKey": "admin-password", "targetPath": "wordpressPassword"}]
    values = yaml.safe_load(show(root + "values.yaml", "acme", "blog", "main"))
    assert values["ingress"]["hostname"] == "blog.acme.test" and "wordpressPassword" not in values
    config = f"applications/acme/acme-prod/blog/kustomization-hz-fsn-rtz-prod.yaml"
    kust = yaml.safe_load(show(config))
    assert validate_manifest(kust) == [] and kust["spec"]["dependsOn"] == [{"name": "acme-prod-blog-db-hz-fsn-rtz-prod"}]
    assert AuditEvent.objects.filter(action="applications.install", org_slug="acme").count() == 2
