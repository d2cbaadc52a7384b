from __future__ import annotations

import pytest

from core.models import OutboxItem
from marketplace.models import Application
from tests.gitutil import commits

pytestmark = pytest.mark.django_db
URL = "/api/v1/orgs/acme/environments/acme-prod/applications/"
BODY = {"name": "cache", "blueprint": "bp-valkey", "values": {"architecture": "standalone"}}


def test_blueprints_list_and_detail(catalog, cast, client_for):
    client = client_for(cast["viewer"])
    rows = client.get("/api/v1/blueprints/?category=databases").json()
    assert {r["name"] for r in rows} >= {"bp-cnpg", "bp-valkey", "bp-mariadb"}
    assert all(r["category"] == "databases" for r in rows)
    detail = client.get("/api/v1/blueprints/bp-wordpress/").json()
    assert [v["version"] for v in detail["versions"]] == ["2.0.0", "1.1.0", "1.0.0"]
    assert detail["versions"][0]["upgrades"] == {"from": ["^1.1"], "blocks": ["~1.0"]}
    assert client.get("/api/v1/blueprints/bp-nope/").status_code == 404


def test_install_201_then_409_and_list(catalog, cast, client_for, on_commit):
    client = client_for(cast["admin"])
    with on_commit():
        response = client.post(URL, BODY, content_type="application/json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (
        body["name"] == "cache" and body["blueprint"] == "bp-valkey" and body["version"] == "2.0.0"
    )
    assert Application.objects.get(name="cache").state == "committed"
    assert commits("acme", "cache", "main")[0].startswith("applications.install")
    again = client.post(URL, BODY, content_type="application/json")
    assert again.status_code == 400 and "already exists" in again.json()["errors"]["name"][0]
    assert [a["name"] for a in client.get(URL).json()] == ["cache"]


def test_install_errors_have_json_paths(catalog, cast, client_for):
    client = client_for(cast["admin"])
    response = client.post(
        URL,
        {
            "name": "blog",
            "blueprint": "bp-wordpress",
            "version": "2.0.0",
            "values": {
                "domain": "x",
                "admin": {"email": "a@b", "password": "secret-in-clear"},
                "replicas": 99,
            },
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"values.admin.password"}
    response = client.post(
        URL,
        {
            "name": "blog",
            "blueprint": "bp-wordpress",
            "values": {"domain": "x", "admin": {"email": "a@b"}, "replicas": 99},
        },
        content_type="application/json",
    )
    assert set(response.json()["errors"]) == {"values.domain", "values.replicas"}
    response = client.post(
        URL,
        {"name": "blog", "blueprint": "bp-wordpress", "version": "7.0.0"},
        content_type="application/json",
    )
    assert response.json()["errors"] == {"version": ["bp-wordpress has no version “7.0.0”."]}
    assert (
        not Application.objects.exists()
        and not OutboxItem.objects.filter(task_name__startswith="marketplace").exists()
    )


def test_idempotency_key_replays_and_rejects_other_body(catalog, cast, client_for, on_commit):
    client = client_for(cast["admin"])
    with on_commit():
        first = client.post(URL, BODY, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = client.post(URL, BODY, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert (
        Application.objects.count() == 1 and len(commits("acme", "cache", "main")) == 2
    )  # README + install
    other = client.post(
        URL, {**BODY, "name": "cache2"}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["errors"]
    assert not Application.objects.filter(name="cache2").exists()


def test_patch_upgrade_delete(catalog, cast, client_for, on_commit):
    client = client_for(cast["admin"])
    with on_commit():
        client.post(
            URL,
            {
                "name": "blog",
                "blueprint": "bp-wordpress",
                "version": "1.0.0",
                "values": {"domain": "b.acme.test", "admin": {"email": "a@b"}},
            },
            content_type="application/json",
        )
    with on_commit():
        patched = client.patch(
            URL + "blog/",
            {"values": {"domain": "new.acme.test", "admin": {"email": "a@b"}}, "size": "medium"},
            content_type="application/json",
        )
    assert (
        patched.status_code == 200
        and patched.json()["values"]["domain"] == "new.acme.test"
        and patched.json()["size"] == "medium"
    )
    refused = client.post(
        URL + "blog/upgrade", {"version": "2.0.0"}, content_type="application/json"
    )
    assert (
        refused.status_code == 400 and "blocks upgrades" in refused.json()["errors"]["version"][0]
    )
    with on_commit():
        upgraded = client.post(
            URL + "blog/upgrade", {"version": "1.1.0"}, content_type="application/json"
        )
    assert upgraded.status_code == 200 and upgraded.json()["version"] == "1.1.0"
    conflict = client.delete(URL + "blog-db/")
    assert conflict.status_code == 409
    with on_commit():
        gone = client.delete(URL + "blog/")
    assert (
        gone.status_code == 202 and gone.json()["state"] == "uninstalling"
    )  # accepted; delivery follows
    assert not Application.objects.filter(
        name="blog"
    ).exists()  # no cluster connected: removed once committed


def test_plan_endpoint_previews_without_writing(catalog, cast, client_for):
    response = client_for(cast["admin"]).post(
        URL + "plan",
        {
            "name": "git",
            "blueprint": "bp-gitea",
            "values": {"domain": "git.acme.test", "admin": {"email": "a@b"}},
        },
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert [a["name"] for a in body["apps"]] == ["git-db", "git"]
    paths = {f["path"] for f in body["files"]}
    assert "overlays/acme-prod/hz-fsn-rtz-prod/kustomization.yaml" in paths
    assert "applications/acme/acme-prod/git/gitrepository.yaml" in paths
    assert all(
        f["status"] == "added" and f["diff"].startswith("--- /dev/null") for f in body["files"]
    )
    assert not Application.objects.exists() and commits("acme", "git", "main") == []


def test_api_dependency_choice_uses_an_existing_application(catalog, cast, client_for, on_commit):
    client = client_for(cast["admin"])
    with on_commit():
        assert (
            client.post(
                URL,
                {"name": "shared-pg", "blueprint": "bp-cnpg", "version": "1.5.0"},
                content_type="application/json",
            ).status_code
            == 201
        )
    with on_commit():
        response = client.post(
            URL,
            {
                "name": "sso",
                "blueprint": "bp-keycloak",
                "values": {"domain": "sso.acme.test"},
                "dependencies": {"db": "shared-pg"},
            },
            content_type="application/json",
        )
    assert response.status_code == 201 and response.json()["dependencies"] == {"db": "shared-pg"}
    assert sorted(Application.objects.values_list("name", flat=True)) == ["shared-pg", "sso"]
    refused = client.delete(URL + "shared-pg/")
    assert (
        refused.status_code == 409
        and "sso depends on shared-pg" in refused.json()["errors"]["name"][0]
    )
