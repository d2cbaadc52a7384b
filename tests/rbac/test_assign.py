"""assign / list / revoke grants through the API and the services: outcomes, rules, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from django.utils import timezone

from core.models import AuditEvent
from orgs import services as org_services
from orgs.models import Environment, Organization
from rbac import access
from rbac import services as rbac_services
from rbac.models import UserAccess
from tests.conftest import make_user
from tests.gitutil import commits, files, show

pytestmark = pytest.mark.django_db
ACME = [{"key": "openova.io/organization", "value": "acme"}]


def post_assign(client, **body):
    return client.post("/api/v1/rbac/assign", body, content_type="application/json")


def test_assign_created_then_no_op_then_updated(cast, client_for, on_commit):
    newbie = make_user("newbie")
    client = client_for(cast["owner"])
    events = AuditEvent.objects.filter(action="rbac.assign").count()
    with on_commit():
        created = post_assign(client, user="newbie@example.test", tier="viewer", scope=ACME)
    assert created.status_code == 201, created.content
    assert created.json()["outcome"] == "created" and created.json()["user"] == "newbie"
    grant = UserAccess.objects.get(user=newbie)
    assert grant.tier == "viewer" and grant.scopes == ACME and grant.org_slug == "acme"
    assert AuditEvent.objects.filter(action="rbac.assign").count() == events + 1

    again = post_assign(client, user="newbie", tier="viewer", scope=ACME)
    assert again.status_code == 200 and again.json()["outcome"] == "no-op"
    assert AuditEvent.objects.filter(action="rbac.assign").count() == events + 1

    updated = post_assign(client, user="newbie", tier="operator", scope=ACME)
    assert updated.status_code == 200 and updated.json()["outcome"] == "updated"
    assert UserAccess.objects.filter(user=newbie).count() == 1
    event = AuditEvent.objects.filter(action="rbac.assign").first()
    assert event.before["tier"] == "viewer" and event.after["tier"] == "operator"
    assert event.actor == cast["owner"] and event.org_slug == "acme"


def test_developer_is_always_scoped_to_dev(cast, client_for):
    newbie = make_user("newbie")
    response = post_assign(
        client_for(cast["owner"]),
        user="newbie",
        tier="developer",
        scope=[*ACME, {"key": "openova.io/env-type", "value": "prod"}],
    )
    assert response.status_code == 201
    grant = UserAccess.objects.get(user=newbie)
    assert {"key": "openova.io/env-type", "value": "dev"} in grant.scopes
    prod = Environment.objects.get(name="acme-prod")
    dev = Environment.objects.get(name="acme-dev")
    assert access.can(newbie, "workloads.exec", dev)
    assert not access.can(newbie, "environments.read", prod)


@pytest.mark.parametrize(
    ("actor", "tier", "status", "message"),
    [
        ("admin", "admin", 201, None),
        ("admin", "owner", 403, "only owners"),
        ("operator", "viewer", 403, "admin tier or higher"),
        ("developer", "viewer", 403, "admin tier or higher"),
        ("viewer", "viewer", 403, "admin tier or higher"),
        ("member_b", "viewer", 404, None),
        ("outsider", "viewer", 404, None),
        ("sovereign_operator", "owner", 201, None),
    ],
)
def test_who_may_assign_what(cast, client_for, actor, tier, status, message):
    make_user("newbie")
    before = (UserAccess.objects.count(), AuditEvent.objects.count())
    response = post_assign(client_for(cast[actor]), user="newbie", tier=tier, scope=ACME)
    assert response.status_code == status, response.content
    if message:
        assert message in response.json()["errors"]["detail"][0]
    if status >= 400:
        assert (UserAccess.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.parametrize(
    ("actor", "status"),
    [("outsider", 404), ("member_b", 404), ("viewer", 403), ("developer", 403)],
)
def test_a_refused_caller_cannot_tell_which_users_exist(cast, client_for, actor, status):
    """The permission check comes before the user lookup (issue 9, defect 10)."""
    client = client_for(cast[actor])
    answers = [
        post_assign(client, user=who, tier="viewer", scope=ACME)
        for who in ("owner", "owner@example.test", "no-such-user", "nobody@example.test")
    ]
    assert [a.status_code for a in answers] == [status] * 4
    assert len({a.content for a in answers}) == 1
    assert not UserAccess.objects.filter(user__username="owner", tier="viewer").exists()


def test_admin_cannot_demote_an_owner_and_last_owner_stays(cast, client_for):
    admin_try = post_assign(client_for(cast["admin"]), user="owner", tier="viewer", scope=ACME)
    assert admin_try.status_code == 403
    self_demote = post_assign(client_for(cast["owner"]), user="owner", tier="admin", scope=ACME)
    assert self_demote.status_code == 409
    assert "last owner" in self_demote.json()["errors"]["tier"][0]
    assert UserAccess.objects.get(user=cast["owner"], org_slug="acme").tier == "owner"


def test_admin_cannot_widen_beyond_own_scope(cast, client_for):
    make_user("newbie")
    response = post_assign(
        client_for(cast["admin"]),
        user="newbie",
        tier="viewer",
        scope=[{"key": "*", "value": "*"}],
    )
    assert response.status_code == 403
    env_scoped = post_assign(
        client_for(cast["admin"]),
        user="newbie",
        tier="viewer",
        scope=[{"key": "openova.io/environment", "value": "acme-prod"}],
    )
    assert env_scoped.status_code == 201
    grant = UserAccess.objects.get(user__username="newbie")
    assert grant.org_slug == "acme"  # derived from the Environment name
    assert not access.can(grant.user, "organization.read", cast["globex"])
    assert access.can(grant.user, "organization.read", cast["acme"])


def test_bad_input_gets_field_errors(cast, client_for):
    client = client_for(cast["owner"])
    assert post_assign(client, user="nobody", tier="viewer", scope=ACME).json()["errors"] == {
        "user": ["No single active user 'nobody'."]
    }
    bad_key = post_assign(
        client, user="viewer", tier="viewer", scope=[{"key": "team", "value": "x"}]
    )
    assert bad_key.status_code == 400 and "scope[0].key" in bad_key.json()["errors"]
    bad_tier = post_assign(client, user="viewer", tier="root", scope=ACME)
    assert bad_tier.status_code == 400 and "tier" in bad_tier.json()["errors"]


def test_internal_member_into_customer_org_needs_management_owner(cast, client_for, on_commit):
    with on_commit():
        ops = org_services.create_organization(
            by=cast["sovereign_operator"], slug="ops-team", display_name="Ops", kind="internal"
        )
    staff = make_user("staff")
    rbac_services.assign(
        by=None,
        user=staff,
        tier="viewer",
        scopes=[{"key": "openova.io/organization", "value": ops.slug}],
    )
    refused = post_assign(client_for(cast["owner"]), user="staff", tier="viewer", scope=ACME)
    assert (
        refused.status_code == 403
        and "management Organization" in refused.json()["errors"]["detail"][0]
    )
    assert not UserAccess.objects.filter(user=staff, org_slug="acme").exists()
    # the operator owns the management Org (it created ops-team)
    allowed = post_assign(
        client_for(cast["sovereign_operator"]), user="staff", tier="viewer", scope=ACME
    )
    assert allowed.status_code == 201


def test_expired_grants_stop_working_at_once(cast, monkeypatch):
    user = make_user("temp")
    soon = timezone.now() + timedelta(minutes=5)
    rbac_services.assign(by=cast["owner"], user=user, tier="viewer", scopes=ACME, expires_at=soon)
    assert access.can(user, "organization.read", cast["acme"])  # grants now cached on `user`
    assert list(access.visible(user, Organization.objects.all(), "organization.read")) == [
        cast["acme"]
    ]

    class Later:
        @staticmethod
        def now():
            return soon + timedelta(seconds=1)

    monkeypatch.setattr(access, "timezone", Later)
    assert not access.can(user, "organization.read", cast["acme"])
    assert not access.visible(user, Organization.objects.all(), "organization.read").exists()


def test_group_subjects(cast):
    user = make_user("grouped")
    rbac_services.assign(by=cast["owner"], group="acme-devops", tier="operator", scopes=ACME)
    assert not access.can(user, "applications.update", cast["acme"])
    user.oidc_groups = ["acme-devops"]
    access.forget(user)
    assert access.can(user, "applications.update", cast["acme"])
    assert not access.can(user, "applications.update", cast["globex"])


def test_list_grants_shows_only_readable_orgs(cast, client_for):
    owner_view = client_for(cast["owner"]).get("/api/v1/rbac/grants/").json()
    assert {g["org_slug"] for g in owner_view} == {"acme"}
    assert {g["user"] for g in owner_view} >= {"owner", "admin", "viewer"}
    operator_view = client_for(cast["sovereign_operator"]).get("/api/v1/rbac/grants/").json()
    assert {g["org_slug"] for g in operator_view} == {"acme", "globex", ""}
    assert client_for(cast["outsider"]).get("/api/v1/rbac/grants/").json() == []
    assert client_for(None).get("/api/v1/rbac/grants/").status_code in (401, 403)


def test_revoke_via_api(cast, client_for, on_commit):
    grant = UserAccess.objects.get(user=cast["viewer"])
    assert client_for(cast["member_b"]).delete(f"/api/v1/rbac/grants/{grant.pk}").status_code == 404
    assert client_for(cast["operator"]).delete(f"/api/v1/rbac/grants/{grant.pk}").status_code == 403
    assert UserAccess.objects.filter(pk=grant.pk).exists()
    with on_commit():
        response = client_for(cast["admin"]).delete(f"/api/v1/rbac/grants/{grant.pk}")
    assert response.status_code == 204
    assert not UserAccess.objects.filter(pk=grant.pk).exists()
    event = AuditEvent.objects.get(action="rbac.revoke")
    assert event.before["tier"] == "viewer" and event.actor == cast["admin"]
    owner_grant = UserAccess.objects.get(user=cast["owner"])
    last = client_for(cast["sovereign_operator"]).delete(f"/api/v1/rbac/grants/{owner_grant.pk}")
    assert last.status_code == 409


def test_grant_change_is_committed_as_a_user_access_cr_and_revoke_removes_it(
    cast, client_for, on_commit
):
    make_user("newbie")
    before = len(commits())
    with on_commit():
        response = post_assign(
            client_for(cast["owner"]), user="newbie", tier="operator", scope=ACME
        )
    pk = response.json()["id"]
    path = f"organizations/acme/access/{pk}.yaml"
    assert len(commits()) == before + 1 and commits()[0] == "rbac.assign: organization acme"
    cr = yaml.safe_load(show(path))
    assert cr["kind"] == "UserAccess" and cr["apiVersion"] == "catalyst.openova.io/v1"
    assert cr["spec"]["tierRoleRef"] == "openova:tier-operator"
    assert cr["spec"]["subject"] == {"kind": "User", "name": "newbie@example.test"}
    assert cr["spec"]["scopes"] == ACME
    with on_commit():
        assert client_for(cast["owner"]).delete(f"/api/v1/rbac/grants/{pk}").status_code == 204
    assert path not in files()
    assert commits()[0] == "rbac.revoke: organization acme"


def test_global_grants_are_committed_under_access_global(cast, client_for, on_commit):
    operator_grant = UserAccess.objects.get(user=cast["sovereign_operator"])
    assert f"access/global/{operator_grant.pk}.yaml" in files()
    make_user("auditor")
    with on_commit():
        response = post_assign(
            client_for(cast["sovereign_operator"]),
            user="auditor",
            tier="viewer",
            scope=[{"key": "*", "value": "*"}],
        )
    assert response.status_code == 201
    pk = response.json()["id"]
    cr = yaml.safe_load(show(f"access/global/{pk}.yaml"))
    assert cr["spec"]["scopes"] == [{"key": "*", "value": "*"}] and cr["spec"]["tier"] == "viewer"
    assert commits()[0] == "rbac.assign: global access grants"
    refused = post_assign(
        client_for(cast["owner"]), user="auditor", tier="viewer", scope=[{"key": "*", "value": "*"}]
    )
    assert refused.status_code == 403
    with on_commit():
        client_for(cast["sovereign_operator"]).delete(f"/api/v1/rbac/grants/{pk}")
    assert f"access/global/{pk}.yaml" not in files()


def test_group_grants_apply_through_the_session_groups(cast, client_for):
    user = make_user("oidc-user")
    client = client_for(user)
    assert client.get("/orgs/acme/").status_code == 404
    rbac_services.assign(by=cast["owner"], group="acme-devops", tier="viewer", scopes=ACME)
    session = client.session
    session["oidc_groups"] = ["acme-devops"]
    session.save()
    assert client.get("/orgs/acme/").status_code == 200
    assert client.get("/orgs/globex/").status_code == 404


def test_operator_pages_need_admin_with_global_scope(cast, client_for):
    auditor = make_user("auditor")
    rbac_services.assign(by=None, user=auditor, tier="viewer", scopes=rbac_services.GLOBAL_SCOPE)
    assert access.is_global(auditor, "audit.read") and not access.is_operator(auditor)
    assert client_for(auditor).get("/audit/").status_code == 404
    assert client_for(auditor).get("/orgs/acme/").status_code == 200  # reads everything
    assert client_for(cast["sovereign_operator"]).get("/audit/").status_code == 200
    assert b'href="/audit/"' in client_for(cast["sovereign_operator"]).get("/orgs/").content
    assert b'href="/audit/"' not in client_for(auditor).get("/orgs/").content


def test_expiry_sweep_removes_expired_grants_from_git(cast, on_commit):
    from rbac.tasks import expire_grants_task

    user = make_user("temp")
    with on_commit():
        grant = rbac_services.assign(
            by=cast["owner"],
            user=user,
            tier="viewer",
            scopes=ACME,
            expires_at=timezone.now() + timedelta(hours=1),
        ).grant
    path = f"organizations/acme/access/{grant.pk}.yaml"
    assert path in files()
    assert yaml.safe_load(show(path))["spec"]["expiresAt"]
    with on_commit():
        assert expire_grants_task() == 0
    UserAccess.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with on_commit():
        assert expire_grants_task() == 1
    assert not UserAccess.objects.filter(pk=grant.pk).exists()
    assert path not in files() and commits()[0] == "rbac.expire: organization acme"
    assert AuditEvent.objects.filter(action="rbac.expire", org_slug="acme").count() == 1
