from __future__ import annotations

import pytest

from core.models import OutboxItem
from marketplace import services
from marketplace.models import Application, BlueprintVersion
from tests.gitutil import commits

pytestmark = pytest.mark.django_db
PROD = "/api/v1/orgs/acme/environments/acme-prod/applications/"
DEV = "/api/v1/orgs/acme/environments/acme-dev/applications/"
BODY = {"name": "cache", "blueprint": "bp-valkey"}


def _nothing_written(name="cache"):
    assert not Application.objects.filter(name=name).exists()
    assert not OutboxItem.objects.filter(task_name__startswith="marketplace").exists()
    assert commits("acme", name, "main") == [] and commits("acme", name, "develop") == []


@pytest.mark.parametrize(
    ("user", "code"), [("viewer", 403), ("developer", 404), ("outsider", 404), ("member_b", 404)]
)
def test_install_in_prod_refused(catalog, cast, client_for, user, code):
    """Viewers see acme-prod but may not install (403); a developer's grant is dev-scoped, so
    acme-prod is not even visible to them (404), like another Org's Environment."""
    response = client_for(cast[user]).post(PROD, BODY, content_type="application/json")
    assert response.status_code == code
    _nothing_written()


def test_developer_may_install_in_dev_only(catalog, cast, client_for, on_commit):
    client = client_for(cast["developer"])
    with on_commit():
        response = client.post(DEV, BODY, content_type="application/json")
    assert response.status_code == 201
    assert commits("acme", "cache", "develop")[0].startswith("applications.install")
    page = client.get("/marketplace/bp-valkey/install/")
    assert (
        page.status_code == 200
        and b'value="acme-dev"' in page.content
        and b'value="acme-prod"' not in page.content
    )


def test_viewer_reads_but_cannot_change(catalog, cast, client_for, on_commit):
    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    with on_commit():
        services.install(
            by=cast["admin"],
            env=cast["acme"].environments.get(env_type="prod"),
            version=version,
            name="cache",
            values={},
        )
    client = client_for(cast["viewer"])
    assert client.get(PROD + "cache/").status_code == 200
    assert client.get("/marketplace/apps/acme-prod/cache/").status_code == 200
    assert (
        client.patch(PROD + "cache/", {"values": {}}, content_type="application/json").status_code
        == 403
    )
    assert client.delete(PROD + "cache/").status_code == 403
    assert (
        client.post(
            "/marketplace/apps/acme-prod/cache/uninstall/", {"confirm": "cache"}
        ).status_code
        == 403
    )
    assert client.get("/marketplace/bp-valkey/install/").status_code == 403
    assert Application.objects.get(name="cache").state == "committed"
    outsider = client_for(cast["member_b"])
    assert outsider.get(PROD + "cache/").status_code == 404
    assert outsider.get("/marketplace/apps/acme-prod/cache/").status_code == 404
    assert (
        outsider.post(
            "/marketplace/apps/acme-prod/cache/upgrade/", {"version": "2.0.0"}
        ).status_code
        == 404
    )
    # operator may change values (applications.update) in prod, not uninstall there? operator inherits developer
    assert (
        client_for(cast["operator"])
        .patch(
            PROD + "cache/",
            {"values": {"architecture": "replication"}},
            content_type="application/json",
        )
        .status_code
        == 200
    )


def test_anonymous_is_redirected_or_401(catalog, client):
    assert client.get("/marketplace/").status_code == 302
    assert client.post(PROD, BODY, content_type="application/json").status_code in (401, 403)
