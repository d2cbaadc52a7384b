"""Git is a surface too (issue 16): a push to an Application's repo is read back through Gitea's
signed push webhook (or the periodic reconcile when the hook was lost), validated against the
Blueprint's configSchema, and adopted — or flagged as invalid and never overwritten; a portal
change racing a push is shown as a conflict with both versions; files the portal does not own
are kept. Everything goes through HTTP (the portal's pages, API and webhook endpoint) and the
Gitea emulator (whose exchanges are checked against Gitea's OpenAPI document)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
import yaml
from django.test import Client

from core.models import AuditEvent
from gitops import sync as gitops_sync
from gitops.models import GitPush
from marketplace import gitsync
from marketplace.models import Application, GitSync
from tests.marketplace.conftest import WEBHOOK_SECRET as SECRET

pytestmark = pytest.mark.django_db
API = "/api/v1/orgs/acme/environments/acme-prod/applications/"
PAGE = "/marketplace/apps/acme-prod/cache/"
REGION_VALUES = "overlays/acme-prod/hz-fsn-rtz-prod/values.yaml"
TEAMMATE = {"login": "tina", "full_name": "Tina Teammate", "email": "tina@example.test"}


def _install(admin: Client, on_commit: Any) -> Application:
    with on_commit():
        response = admin.post(
            API, {"name": "cache", "blueprint": "bp-valkey"}, content_type="application/json"
        )
    assert response.status_code == 201, response.json()
    return Application.objects.get(name="cache")


def _git_values(gitea: Any, path: str = "values.yaml") -> Any:
    return yaml.safe_load(gitea.read("acme", "cache", path))


def _push(gitea: Any, changes: dict[str, bytes | None], message: str = "tune cache") -> str:
    return gitea.commit_directly("acme", "cache", "main", changes, message, as_user=TEAMMATE)


def test_portal_creates_a_signed_push_hook_and_writes_the_configuration(
    catalog, cast, client_for, on_commit, portal
):
    app = _install(client_for(cast["admin"]), on_commit)
    [hook] = portal.hooks[("acme", "cache")]
    assert hook["config"]["url"] == "http://testserver/hooks/gitea/"
    assert hook["config"]["secret"] == SECRET and hook["events"] == ["push", "pull_request"]
    # the configuration file sits at the root, in configSchema space (no rendered chart values)
    assert (
        _git_values(portal)
        == app.values
        == {
            "architecture": "standalone",
            "persistence": {"enabled": True, "size": "2Gi"},
        }
    )
    # the portal's own push comes back through the hook and changes nothing
    assert portal.flush() == 1 and portal.deliveries[-1]["status"] == 202
    state = GitSync.objects.get(application=app)
    head = gitops_sync.backend().head_commit("acme", "cache", "main")
    assert state.state == "in-sync" and state.head == head.sha and not state.errors


def test_a_valid_push_is_adopted_with_its_pusher(catalog, cast, client_for, on_commit, portal):
    admin = client_for(cast["admin"])
    app = _install(admin, on_commit)
    portal.flush()
    text = (
        "# tuned by Tina: bigger volume for the sessions\n"
        "architecture: replication\n"
        "persistence:\n  size: 8Gi\n"
    )
    extra = "overlays/acme-prod/hz-fsn-rtz-prod/extra-configmap.yaml"
    pushed = _push(
        portal,
        {"values.yaml": text.encode(), "overlays/notes.md": b"mine\n", extra: b"kind: ConfigMap\n"},
    )
    assert portal.flush() == 1 and portal.deliveries[-1]["status"] == 202
    assert GitPush.objects.get(after=pushed).pusher == "tina (Tina Teammate)"

    app.refresh_from_db()
    assert app.values == {
        "architecture": "replication",
        "persistence": {"enabled": True, "size": "8Gi"},
    }
    event = AuditEvent.objects.get(action="applications.git_change")
    assert event.actor_repr == "tina (Tina Teammate) via Git" and event.actor is None
    assert (
        event.after["commit"] == pushed and event.before["values"]["architecture"] == "standalone"
    )
    # the portal rendered the chart values from it, keeping Tina's file as she wrote it
    subjects = portal.log("acme", "cache")
    assert subjects[:2] == ["applications.git_change: application acme-prod/cache", "tune cache"]
    assert portal.read("acme", "cache", "values.yaml").decode() == text
    rendered = _git_values(portal, REGION_VALUES)
    assert rendered["architecture"] == "replication"
    assert rendered["primary"]["persistence"]["size"] == "8Gi"
    # the page's timeline says who changed it and how
    page = client_for(cast["viewer"]).get(PAGE).content.decode()
    assert f"Changed via Git by tina (Tina Teammate) (commit {pushed[:10]})" in page
    # files the portal does not own survive the portal's next change
    with on_commit():
        resized = admin.post(
            API + "cache/resize", {"size": "medium"}, content_type="application/json"
        )
    assert resized.status_code == 200
    assert portal.read("acme", "cache", "overlays/notes.md") == b"mine\n"
    assert portal.read("acme", "cache", extra) == b"kind: ConfigMap\n"
    assert portal.log("acme", "cache")[0] == "applications.resize: application acme-prod/cache"
    assert portal.read("acme", "cache", "values.yaml").decode() == text


def test_webhook_signature_is_verified(catalog, cast, client_for, on_commit, portal):
    _install(client_for(cast["admin"]), on_commit)
    body = json.dumps(
        {"ref": "refs/heads/main", "after": "a" * 40, "repository": {"full_name": "acme/cache"}}
    ).encode()
    anonymous = Client()

    def post(signature: str, delivery: str = "") -> int:
        return anonymous.post(
            "/hooks/gitea/",
            data=body,
            content_type="application/json",
            HTTP_X_GITEA_EVENT="push",
            HTTP_X_GITEA_SIGNATURE=signature,
            HTTP_X_GITEA_DELIVERY=delivery,
        ).status_code

    forged = hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    assert post("") == 403 and post(forged) == 403
    assert not GitPush.objects.exists()
    good = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with on_commit():
        assert post(good, "d-1") == 202
        assert post(good, "d-1") == 200  # a redelivery: recorded once
    assert GitPush.objects.count() == 1
    assert anonymous.get("/hooks/gitea/").status_code == 405


def test_an_invalid_push_is_flagged_and_never_overwritten(
    catalog, cast, client_for, on_commit, portal
):
    admin = client_for(cast["admin"])
    app = _install(admin, on_commit)
    portal.flush()
    bad = b"architecture: cluster\npersistence:\n  size: lots\n"
    pushed = _push(portal, {"values.yaml": bad})
    portal.flush()
    state = GitSync.objects.get(application=app)
    assert state.state == "invalid" and state.commit == pushed
    paths = {e["path"] for e in state.errors}
    assert paths == {"values.architecture", "values.persistence.size"}
    event = AuditEvent.objects.get(action="applications.git_invalid")
    assert event.actor_repr == "tina (Tina Teammate) via Git"
    page = client_for(cast["viewer"]).get(PAGE).content.decode()
    assert "Git holds an invalid change" in page and "values.persistence.size" in page
    app.refresh_from_db()
    assert app.values["architecture"] == "standalone"  # not adopted

    # the portal refuses its own changes meanwhile (409 naming the Git change), writes nothing
    before = portal.log("acme", "cache")
    with on_commit():
        refused = admin.post(
            API + "cache/resize", {"size": "large"}, content_type="application/json"
        )
    assert refused.status_code == 409 and "invalid change" in json.dumps(refused.json())
    # a re-render the portal starts by itself (the Organization is suspended) does not write it
    from marketplace import services

    with on_commit():
        from core import outbox

        outbox.enqueue(services.SYNC_TASK, app.pk)
    assert (
        portal.log("acme", "cache") == before and portal.read("acme", "cache", "values.yaml") == bad
    )

    # a YAML syntax error is reported with its line
    broken = _push(portal, {"values.yaml": b"architecture: [standalone\n"})
    portal.flush()
    state.refresh_from_db()
    assert state.commit == broken and "Not valid YAML (line 2" in state.errors[0]["message"]

    # fixed in Git: adopted
    fixed = _push(portal, {"values.yaml": b"architecture: replication\n"})
    portal.flush()
    state.refresh_from_db()
    app.refresh_from_db()
    assert state.state == "in-sync" and app.values["architecture"] == "replication"
    assert AuditEvent.objects.get(action="applications.git_change").after["commit"] == fixed


def test_replacing_an_invalid_git_change_is_explicit_and_audited(
    catalog, cast, client_for, on_commit, portal
):
    admin = client_for(cast["admin"])
    app = _install(admin, on_commit)
    portal.flush()
    _push(portal, {REGION_VALUES: b"primary: {replicas: 9}\n"})  # a rendered file edited by hand
    portal.flush()
    state = GitSync.objects.get(application=app)
    assert state.state == "invalid"
    assert state.errors == [{"path": REGION_VALUES, "message": gitsync.GENERATED_EDIT}]
    page = client_for(cast["viewer"]).get(PAGE + "git/")
    assert page.status_code == 200 and "rendered by the portal" in page.content.decode()
    # the viewer may look but not choose; another Organization's member does not see it at all
    assert (
        client_for(cast["viewer"]).post(PAGE + "git/", {"choice": "use-portal"}).status_code == 403
    )
    assert client_for(cast["member_b"]).get(PAGE + "git/").status_code == 404
    with on_commit():
        done = admin.post(PAGE + "git/", {"choice": "use-portal"})
    assert done.status_code == 302
    assert (
        portal.log("acme", "cache")[0] == "applications.git_overwrite: application acme-prod/cache"
    )
    assert _git_values(portal, REGION_VALUES)["architecture"] == "standalone"  # rendered again
    state.refresh_from_db()
    assert state.state == "in-sync"
    event = AuditEvent.objects.get(action="applications.git_overwrite")
    assert event.actor == cast["admin"] and event.before["errors"][0]["path"] == REGION_VALUES


def test_a_portal_change_racing_a_push_is_a_conflict_with_both_versions(
    catalog, cast, client_for, on_commit, portal
):
    admin = client_for(cast["admin"])
    app = _install(admin, on_commit)
    portal.flush()
    git_text = b"architecture: replication\n"
    pushed = _push(portal, {"values.yaml": git_text})  # its webhook is still on its way
    with on_commit():
        edited = admin.patch(
            API + "cache/",
            {"values": {"persistence": {"size": "4Gi"}}},
            content_type="application/json",
        )
    assert edited.status_code == 200, edited.json()
    # the portal did not overwrite Tina's push
    assert portal.read("acme", "cache", "values.yaml") == git_text
    assert portal.log("acme", "cache")[0] == "tune cache"
    state = GitSync.objects.get(application=app)
    assert state.state == "conflict" and state.commit == pushed
    assert state.git_values["architecture"] == "replication"
    app.refresh_from_db()
    assert app.values["persistence"]["size"] == "4Gi" and app.state == "pending"
    portal.flush()  # the late webhook changes nothing
    state.refresh_from_db()
    assert state.state == "conflict"
    page = client_for(cast["viewer"]).get(PAGE + "git/").content.decode()
    assert 'id="git-values"' in page and 'id="portal-values"' in page
    assert "+architecture: replication" in page and "size: 4Gi" in page
    with on_commit():
        kept = admin.post(PAGE + "git/", {"choice": "keep-git"})
    assert kept.status_code == 302
    app.refresh_from_db()
    state.refresh_from_db()
    assert state.state == "in-sync" and app.values["architecture"] == "replication"
    assert app.values["persistence"]["size"] == "2Gi"
    assert portal.read("acme", "cache", "values.yaml") == git_text
    assert portal.log("acme", "cache")[0] == "applications.git_keep: application acme-prod/cache"
    assert AuditEvent.objects.get(action="applications.git_keep").actor == cast["admin"]


def test_a_lost_webhook_is_caught_by_the_reconcile(catalog, cast, client_for, on_commit, portal):
    app = _install(client_for(cast["admin"]), on_commit)
    portal.flush()
    pushed = _push(portal, {"values.yaml": b"persistence:\n  size: 16Gi\n"})
    assert portal.drop_hooks() == 1  # Gitea gave up delivering it
    app.refresh_from_db()
    assert app.values["persistence"]["size"] == "2Gi"
    from marketplace.tasks import reconcile_git_task

    with on_commit():
        reconcile_git_task()
    app.refresh_from_db()
    assert app.values["persistence"]["size"] == "16Gi"
    event = AuditEvent.objects.get(action="applications.git_change")
    # no webhook named the pusher: the commit's author does
    assert event.actor_repr == "Tina Teammate via Git" and event.after["commit"] == pushed
    with on_commit():  # a second pass finds nothing new
        assert gitsync.reconcile_all()["adopted"] == 0


def test_suspension_scales_down_even_while_git_holds_an_invalid_change(
    catalog, cast, client_for, on_commit, portal
):
    """A push the portal cannot take in must not shield workloads from suspension: the rendered
    files are committed (scaled to zero), Git's values.yaml is left as the pusher wrote it."""
    from orgs import services as org_services

    app = _install(client_for(cast["admin"]), on_commit)
    portal.flush()
    bad = b"architecture: [unclosed\n"
    pushed = _push(portal, {"values.yaml": bad})
    portal.flush()
    with on_commit():
        org_services.suspend_organization(by=cast["sovereign_operator"], org=cast["acme"])
    release = list(
        yaml.safe_load_all(
            portal.read("acme", "cache", "overlays/acme-prod/hz-fsn-rtz-prod/helmrelease.yaml")
        )
    )[1]
    assert release["metadata"]["annotations"]["catalyst.openova.io/role"] == "suspended"
    assert release["spec"]["postRenderers"]
    assert portal.read("acme", "cache", "values.yaml") == bad
    state = GitSync.objects.get(application=app)
    assert state.state == "invalid" and state.commit == pushed  # still Tina's change
    assert state.pusher == "tina (Tina Teammate)"
