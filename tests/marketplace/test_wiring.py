"""Dependency wiring through HTTP: a dependant's chart values point at its dependency ("create
new" and "use existing" alike), the preview shows it, and secrets stay references."""

from __future__ import annotations

import pytest
import yaml

from core.models import AuditEvent
from marketplace.models import Application
from tests.gitutil import files, show

pytestmark = pytest.mark.django_db
API = "/api/v1/orgs/acme/environments/acme-prod/applications/"
WP_FORM = {
    "environment": "acme-prod",
    "name": "blog",
    "size": "small",
    "placement": "single-region",
    "regions": ["hz-fsn-rtz-prod"],
    "domain": "blog.acme.test",
    "blogName": "Acme blog",
    "admin__username": "admin",
    "admin__email": "ops@acme.test",
    "replicas": "1",
    "database__port": "3306",
    "database__name": "wordpress",
    "database__user": "wordpress",
    "dep__db": "new",
}
RELEASE = "overlays/acme-prod/hz-fsn-rtz-prod/helmrelease.yaml"
VALUES = "overlays/acme-prod/hz-fsn-rtz-prod/values.yaml"


def _release(app: str) -> dict:
    return list(yaml.safe_load_all(show(RELEASE.format(app=app), "acme", app, "main")))[1]


def _values(app: str) -> dict:
    return yaml.safe_load(show(VALUES.format(app=app), "acme", app, "main"))


def _no_secret_values_in_git(app: str) -> None:
    for path in files("acme", app, "main"):
        text = show(path, "acme", app, "main")
        assert "password: " not in text.replace("Password: {", ""), path  # only references


def test_wordpress_with_a_new_database_is_wired_to_it(catalog, cast, client_for, on_commit):
    client = client_for(cast["admin"])
    response = client.post("/marketplace/bp-wordpress/install/?version=2.0.0", WP_FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "<h2>Wiring</h2>" in html
    assert 'data-wiring="blog"' in html and "blog ← db: blog-db" in html
    assert (
        "<code>externalDatabase.host</code></td><td><code>db.host</code> <small>(db)</small></td><td><code>blog-db</code>"
        in html
    )
    assert "Secret blog-db-credentials, key password" in html  # a reference, never a value
    assert "<code>mariadb.enabled</code>" in html and "Monthly price" in html
    # the computed default (`not values.database.external`) is replaced by the db wiring
    assert '<tr class="overridden"><td><code>mariadb.enabled</code>' in html
    assert "<code>false</code>" in html and "<code>true</code>" in html  # YAML, not repr
    assert "Included in your plan" in html  # blog small + blog-db small: no extra charge
    assert Application.objects.count() == 0  # the preview writes nothing
    # the wrong roles: a viewer may not install, another Organization's owner cannot see the plan
    assert client_for(cast["viewer"]).post(response["Location"]).status_code == 404
    assert client_for(cast["member_b"]).get(response["Location"]).status_code == 404
    with on_commit():
        done = client.post(response["Location"])
    assert done.status_code == 302
    values = _values("blog")
    assert values["externalDatabase"] == {
        "host": "blog-db",
        "port": 3306,
        "database": "wordpress",
        "user": "wordpress",
    }
    assert values["mariadb"] == {"enabled": False} and values["ingress"]["enabled"] is True
    refs = {
        r["targetPath"]: r for r in _release("blog")["spec"]["valuesFrom"] if r["kind"] == "Secret"
    }
    assert refs["externalDatabase.password"] == {
        "kind": "Secret",
        "name": "blog-db-credentials",
        "valuesKey": "password",
        "targetPath": "externalDatabase.password",
    }
    db_values = _values("blog-db")
    assert (
        db_values["fullnameOverride"] == "blog-db" and db_values["auth"]["database"] == "wordpress"
    )
    db_refs = [r for r in _release("blog-db")["spec"]["valuesFrom"] if r["kind"] == "Secret"]
    assert {r["targetPath"] for r in db_refs} == {"auth.password", "auth.rootPassword"}
    _no_secret_values_in_git("blog")
    _no_secret_values_in_git("blog-db")
    assert AuditEvent.objects.filter(action="applications.install").count() == 2


def test_keycloak_uses_an_existing_database_through_the_api(catalog, cast, client_for, on_commit):
    admin = client_for(cast["admin"])
    with on_commit():
        made = admin.post(
            API,
            {
                "name": "shared-pg",
                "blueprint": "bp-cnpg",
                "version": "1.4.0",
                "values": {"database": "sso", "owner": "sso"},
            },
            content_type="application/json",
        )
    assert made.status_code == 201, made.json()
    body = {
        "name": "sso",
        "blueprint": "bp-keycloak",
        "version": "24.0.0",
        "values": {"domain": "sso.acme.test"},
        "dependencies": {"db": "shared-pg"},
    }
    plan = admin.post(API + "plan", body, content_type="application/json")
    assert plan.status_code == 200, plan.json()
    data = plan.json()
    assert data["uses"][0]["application"] == "shared-pg" and [a["name"] for a in data["apps"]] == [
        "sso"
    ]
    wired = {v["path"]: v for v in data["wiring"][0]["values"]}
    assert data["wiring"][0]["dependencies"] == {"db": "shared-pg"}
    assert wired["database.hostname"]["value"] == "shared-pg-rw"
    assert wired["database.database"]["value"] == "sso" and wired["database.port"]["value"] == 5432
    assert wired["database.existingSecret"]["value"] == "shared-pg-app"  # the operator's Secret
    assert (
        data["price"]["total"] == "OMR 0.000" and data["price"]["lines"] == []
    )  # small: in the plan
    # the wrong roles: a viewer is refused, another Organization does not see acme-prod
    assert (
        client_for(cast["viewer"])
        .post(API + "plan", body, content_type="application/json")
        .status_code
        == 403
    )
    assert (
        client_for(cast["member_b"]).post(API, body, content_type="application/json").status_code
        == 404
    )
    with on_commit():
        created = admin.post(API, body, content_type="application/json")
    assert created.status_code == 201, created.json()
    values = _values("sso")
    assert values["database"] == {
        "vendor": "postgres",
        "hostname": "shared-pg-rw",
        "port": 5432,
        "database": "sso",
        "username": "sso",
        "existingSecret": "shared-pg-app",
        "existingSecretKey": "password",
    }
    assert "&id0" not in show(VALUES.format(app="sso"), "acme", "sso", "main")
    assert Application.objects.get(name="sso").dependencies == {"db": "shared-pg"}


def test_a_dependency_that_does_not_offer_what_is_wired_is_refused(
    catalog, cast, client_for, publish
):
    from tests.marketplace.conftest import blueprint_doc

    publish(
        blueprint_doc(
            "bp-needy",
            "1.0.0",
            depends=[
                {
                    "blueprint": "bp-valkey",
                    "range": "^2.0",
                    "alias": "cache",
                    "wiring": {"cache.url": "cache.url"},
                }
            ],
        )
    )
    response = client_for(cast["admin"]).post(
        API + "plan", {"name": "needy", "blueprint": "bp-needy"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["errors"]["dependencies.cache"] == [
        "bp-valkey@2.0.0 offers no url, which bp-needy@1.0.0 wires into its chart."
    ]


def test_wiring_is_checked_when_the_catalog_loads(publish):
    from marketplace.models import CatalogSyncError
    from tests.marketplace.conftest import blueprint_doc

    result = publish(
        blueprint_doc(
            "bp-broken",
            "1.0.0",
            depends=[
                {"blueprint": "bp-valkey", "range": "^2.0", "wiring": {"a.b": "redis.host +"}}
            ],
            outputs={"pw": {"secret": "nope"}, "host": "other.thing"},
        )
    )
    assert result["errors"] == 1
    error = CatalogSyncError.objects.get().error
    assert "spec.outputs.pw: “nope” is not a password field of configSchema" in error
    assert "spec.outputs.host: refers to other; use app, values" in error
    assert "spec.depends[0].wiring.a.b: unexpected end of expression" in error


def test_changing_a_dependency_rewires_its_dependants(catalog, cast, client_for, on_commit):
    admin = client_for(cast["admin"])
    body = {
        "name": "blog",
        "blueprint": "bp-wordpress",
        "values": {"domain": "blog.acme.test", "admin": {"email": "ops@acme.test"}},
    }
    with on_commit():
        assert admin.post(API, body, content_type="application/json").status_code == 201
    with on_commit():
        changed = admin.patch(
            API + "blog-db/",
            {"values": {"database": "site", "username": "site"}},
            content_type="application/json",
        )
    assert changed.status_code == 200, changed.json()
    assert _values("blog")["externalDatabase"]["database"] == "site"  # the dependant followed
    assert _values("blog")["externalDatabase"]["user"] == "site"
