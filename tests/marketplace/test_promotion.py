"""Promotion (issue 16): "Promote to prod" opens a pull request in Gitea carrying the dev
Application's values.yaml to the prod branch; the prod EnvironmentPolicy (edited here and
committed as a CR) is evaluated rule by rule — pr-required, soak, change-window — and the merge
is refused until every blocking rule passes; merged, prod reads the configuration back (audited,
on its timeline) while placement stays per Environment."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from core.models import AuditEvent
from gitops import naming, store
from marketplace.models import Application, Promotion
from tests.marketplace.test_live_status import raw

pytestmark = pytest.mark.django_db
APPS = "/api/v1/orgs/acme/environments/{env}/applications/"
POLICY = "/marketplace/environments/acme-prod/policy/"
OPERATOR = {"login": "operator", "full_name": "Op Erator", "email": "operator@example.test"}


def _install(client, on_commit, env, values=None):
    with on_commit():
        response = client.post(
            APPS.format(env=env),
            {"name": "cache", "blueprint": "bp-valkey", "values": values or {}},
            content_type="application/json",
        )
    assert response.status_code == 201, response.json()
    return Application.objects.get(name="cache", environment__name=env)


def _policy(client, on_commit, text):
    with on_commit():
        return client.post(POLICY, {"rules": text})


RULES = """
- name: review
  type: pr-required
  minApprovals: 2
  approvers: {users: [viewer, operator, admin]}
- name: soak
  type: soak
  duration: 1h
- name: window
  type: change-window
  cron: "0 0 1 1 *"
  duration: 1m
"""


def test_promotion_blocked_by_each_rule_then_merged(catalog, cast, client_for, on_commit, portal):
    admin, viewer = client_for(cast["admin"]), client_for(cast["viewer"])
    dev = _install(admin, on_commit, "acme-dev", {"architecture": "replication"})
    prod = _install(admin, on_commit, "acme-prod")
    portal.flush()

    # the policy: per-field errors first, then committed as the EnvironmentPolicy CR
    bad = _policy(admin, on_commit, "- name: review\n  type: pr-required\n  minApprovals: 0\n")
    assert bad.status_code == 400 and "rules.0" in bad.content.decode()
    assert _policy(viewer, on_commit, RULES).status_code == 403
    assert _policy(admin, on_commit, RULES).status_code == 302
    # the approvers are the app repo's code owners on the prod branch (not on develop)
    owners = portal.read("acme", "cache", "CODEOWNERS", "main").decode()
    assert owners.splitlines()[-1] == "* @viewer @operator @admin"
    assert portal.read("acme", "cache", "CODEOWNERS", "develop") is None
    cr = yaml.safe_load(portal.read("system", "catalyst-config", "policies/acme-prod-policy.yaml"))
    assert cr["kind"] == "EnvironmentPolicy" and [r["type"] for r in cr["spec"]["rules"]] == [
        "pr-required",
        "soak",
        "change-window",
    ]

    # open: a pull request develop's values → main, showing the diff
    with on_commit():
        opened = admin.post("/marketplace/apps/acme-dev/cache/promote/")
    promotion = Promotion.objects.get()
    assert (
        opened.status_code == 302
        and opened["Location"] == f"/marketplace/promotions/{promotion.pk}/"
    )
    [pull] = portal.pulls[("acme", "cache")]
    assert pull["base"]["ref"] == "main" and pull["head"]["ref"] == promotion.branch
    assert promotion.pr_number == pull["number"]
    page = viewer.get(f"/marketplace/promotions/{promotion.pk}/").content.decode()
    assert "-architecture: standalone" in page and "+architecture: replication" in page
    assert page.count('data-passed="false"') == 3

    def merge(client):
        with on_commit():
            return client.post(f"/marketplace/promotions/{promotion.pk}/merge/")

    before = portal.log("acme", "cache")
    refused = merge(admin)
    text = refused.content.decode()
    assert refused.status_code == 409
    assert "review (pr-required): 0 of 2 approvals" in text and "soak (soak)" in text
    assert "window (change-window): outside the change window" in text
    assert merge(viewer).status_code == 403  # the viewer may not change prod
    assert portal.log("acme", "cache") == before

    # pr-required: the opener does not count; one approval here, one as a review in Gitea
    assert admin.post(f"/marketplace/promotions/{promotion.pk}/approve/").status_code == 409
    with on_commit():
        assert viewer.post(f"/marketplace/promotions/{promotion.pk}/approve/").status_code == 302
    portal.review_as("acme", "cache", promotion.pr_number, OPERATOR, "APPROVED")
    assert "review (pr-required)" not in merge(admin).content.decode()

    # soak: dev Ready on the promoted revision, for long enough
    dev_region = "hz-fsn-rtz-dev"
    labels = {
        "openova.io/organization": "acme",
        "openova.io/environment": "acme-dev",
        "openova.io/application": "cache",
        "openova.io/managed-by": "flux",
        "openova.io/host-cluster": dev_region,
    }
    kustomization = naming.flux_object_name("acme", "acme-dev", "cache", dev_region)
    revision = f"develop@sha1:{promotion.source_revision}"
    store.apply(
        dev_region,
        "HelmRelease",
        "ADDED",
        raw(
            "HelmRelease",
            "cache",
            10,
            ready="True",
            reason="InstallSucceeded",
            namespace="acme-dev",
            labels=labels,
        ),
    )
    store.apply(
        dev_region,
        "Kustomization",
        "ADDED",
        raw(
            "Kustomization",
            kustomization,
            11,
            ready="True",
            reason="ReconciliationSucceeded",
            message=f"Applied revision: {revision}",
            revision=revision,
            labels=labels,
        ),
    )
    dev.refresh_from_db()
    assert dev.state == "ready" and dev.observed_revision == revision
    assert "soak (soak): acme-dev Ready on" in merge(admin).content.decode()
    AuditEvent.objects.filter(action="applications.reconcile", target_id=str(dev.pk)).update(
        created_at=dev.updated_at - timedelta(hours=2)
    )
    still = merge(admin).content.decode()
    assert "soak (soak)" not in still and "window (change-window)" in still

    # change-window: a window that is open now
    assert _policy(admin, on_commit, RULES.replace('"0 0 1 1 *"', '"* * * * *"')).status_code == 302
    done = merge(admin)
    assert done.status_code == 302 and done["Location"] == "/marketplace/apps/acme-prod/cache/"
    promotion.refresh_from_db()
    assert promotion.state == "merged" and pull["merged"] is True
    prod.refresh_from_db()
    assert prod.values["architecture"] == "replication"
    event = AuditEvent.objects.get(action="applications.promote")
    assert event.actor == cast["admin"] and event.after["from"] == "acme-dev"
    # prod renders its own placement: no dev cluster files reach main
    tree = portal.tree("acme", "cache", "main")
    assert not [p for p in tree if "hz-fsn-rtz-dev" in p]
    rendered = yaml.safe_load(
        portal.read("acme", "cache", "overlays/acme-prod/hz-fsn-rtz-prod/values.yaml")
    )
    assert rendered["architecture"] == "replication"
    timeline = viewer.get("/marketplace/apps/acme-prod/cache/").content.decode()
    assert "Promoted from acme-dev" in timeline


def test_nothing_to_promote_and_no_higher_environment(catalog, cast, client_for, on_commit, portal):
    admin = client_for(cast["admin"])
    _install(admin, on_commit, "acme-dev")
    with on_commit():
        nowhere = admin.post("/marketplace/apps/acme-dev/cache/promote/", follow=True)
    assert "No higher Environment of acme runs cache." in nowhere.content.decode()
    _install(admin, on_commit, "acme-prod")
    with on_commit():
        same = admin.post("/marketplace/apps/acme-dev/cache/promote/", follow=True)
    assert "already has this configuration" in same.content.decode()
    assert not Promotion.objects.exists()


def test_a_pull_request_opened_in_gitea_is_gated_by_the_policy(
    catalog, cast, client_for, on_commit, portal
):
    """The policy applies whichever surface opened the PR: a PR into main opened in Gitea
    becomes a promotion here, and its head carries the `catalyst/policy` status."""
    admin, viewer = client_for(cast["admin"]), client_for(cast["viewer"])
    _install(admin, on_commit, "acme-dev", {"persistence": {"size": "4Gi"}})
    prod = _install(admin, on_commit, "acme-prod")
    rules = (
        "- name: review\n  type: pr-required\n  minApprovals: 1\n  approvers: {users: [viewer]}\n"
    )
    assert _policy(admin, on_commit, rules).status_code == 302
    portal.flush()
    # a person branches from main in Gitea, edits values.yaml and opens a PR into main
    portal.create_branch(
        "acme", "cache", body={"new_branch_name": "bigger-volume", "old_ref_name": "main"}, query={}
    )
    text = portal.read("acme", "cache", "values.yaml").replace(b"size: 2Gi", b"size: 4Gi")
    portal.commit_directly(
        "acme", "cache", "bigger-volume", {"values.yaml": text}, as_user=OPERATOR
    )
    pull = portal.open_pull_as(
        "acme", "cache", OPERATOR, head="bigger-volume", base="main", title="More room"
    )
    portal.flush()  # the push and pull_request webhooks
    found = Promotion.objects.get(pr_number=pull["number"])
    assert found.target == prod and found.source is None and found.branch == "bigger-volume"
    assert found.opened_in_gitea_by == "operator" and found.opened_by == cast["operator"]
    assert "-  size: 2Gi\n+  size: 4Gi" in found.diff
    page = viewer.get(f"/marketplace/promotions/{found.pk}/").content.decode()
    assert "operator in Gitea" in page and "bigger-volume → acme-prod" in page
    [status] = portal.statuses[("acme", "cache", pull["head"]["sha"])]
    assert status["status"] == "failure" and status["context"] == "catalyst/policy"
    assert status["description"] == "Blocked by review"
    assert status["target_url"].endswith(f"/marketplace/promotions/{found.pk}/")
    with on_commit():
        assert viewer.post(f"/marketplace/promotions/{found.pk}/approve/").status_code == 302
    latest = portal.statuses[("acme", "cache", pull["head"]["sha"])][-1]
    assert latest["status"] == "success"
    with on_commit():
        merged = admin.post(f"/marketplace/promotions/{found.pk}/merge/")
    assert merged.status_code == 302, merged.content.decode()[-3000:]
    prod.refresh_from_db()
    assert prod.values["persistence"]["size"] == "4Gi"


def test_promotion_through_the_api_on_local_repositories(catalog, cast, client_for, on_commit):
    """Embedded (local bare repos, no pull requests): the promotion is kept in the portal and
    merging commits the promoted values.yaml to the target branch; same rules, same refusals."""
    from tests.gitutil import commits, show

    admin, viewer = client_for(cast["admin"]), client_for(cast["viewer"])
    _install(admin, on_commit, "acme-dev", {"architecture": "replication"})
    prod = _install(admin, on_commit, "acme-prod")
    policy = "/api/v1/orgs/acme/environments/acme-prod/policy"
    review = {"name": "review", "type": "pr-required", "minApprovals": 1}
    bad = admin.put(policy, {"rules": [review]}, content_type="application/json")
    assert bad.status_code == 400
    assert list(bad.json()["errors"]) == ["rules.0"]  # approvers is required
    review["approvers"] = {"users": ["viewer"]}
    assert (
        viewer.put(policy, {"rules": [review]}, content_type="application/json").status_code == 403
    )
    assert client_for(cast["member_b"]).get(policy).status_code == 404
    with on_commit():
        saved = admin.put(policy, {"rules": [review]}, content_type="application/json")
    assert saved.status_code == 200 and saved.json()["rules"] == [review]
    assert "pr-required" in show("policies/acme-prod-policy.yaml")

    with on_commit():
        opened = admin.post(APPS.format(env="acme-dev") + "cache/promote")
    assert opened.status_code == 201, opened.json()
    pk = opened.json()["id"]
    assert opened.json()["pr_number"] is None and opened.json()["origin"] == "acme-dev"
    assert [r["passed"] for r in opened.json()["rules"]] == [False]
    with on_commit():
        blocked = admin.post(f"/api/v1/promotions/{pk}/merge")
    assert blocked.status_code == 409
    assert blocked.json()["errors"]["policy"][0].startswith("review (pr-required): 0 of 1")
    assert viewer.post(f"/api/v1/promotions/{pk}/merge").status_code == 403
    with on_commit():
        assert viewer.post(f"/api/v1/promotions/{pk}/approve").status_code == 200
        merged = admin.post(f"/api/v1/promotions/{pk}/merge")
    assert merged.status_code == 200 and merged.json()["state"] == "merged"
    assert commits("acme", "cache", "main")[1] == f"Promote cache from acme-dev (#{pk})"
    prod.refresh_from_db()
    assert prod.values["architecture"] == "replication"


def test_opening_a_promotion_goes_through_the_outbox_and_a_retry_opens_one_pull_request(
    catalog, cast, client_for, on_commit, portal
):
    """The pull request is opened by a task retry-safe by its outbox row: Gitea creating the PR
    but its answer getting lost is retried later without a second PR (nor a second promotion
    from the pull_request webhook); the person's request does not fail meanwhile."""
    from django.utils import timezone
    from werkzeug.wrappers import Response

    from core import outbox
    from core.models import OutboxItem

    admin = client_for(cast["admin"])
    _install(admin, on_commit, "acme-dev", {"architecture": "replication"})
    _install(admin, on_commit, "acme-prod")
    portal.flush()

    def answer_lost(request):
        if request.method == "POST" and request.path.endswith("/repos/acme/cache/pulls"):
            portal.before.remove(answer_lost)
            portal.create_pull("acme", "cache", body=request.get_json(), query={})
            return Response('{"message": "gateway timeout"}', 504, content_type="application/json")
        return None

    portal.before.append(answer_lost)
    with on_commit():
        opened = admin.post(APPS.format(env="acme-dev") + "cache/promote")
    assert opened.status_code == 201, opened.json()
    body = opened.json()
    assert body["state"] == "open" and body["pr_number"] is None
    assert body["branch"] == f"promote/acme-dev-to-acme-prod-{body['id']}"
    item = OutboxItem.objects.get(
        task_name="marketplace.tasks.open_promotion_task", key=str(body["id"])
    )
    assert item.done_at is None and "504" in item.last_error
    page = client_for(cast["viewer"]).get(f"/marketplace/promotions/{body['id']}/")
    assert "being opened" in page.content.decode()
    portal.flush()  # Gitea's pull_request webhook for the PR it did create
    assert Promotion.objects.count() == 1

    OutboxItem.objects.filter(pk=item.pk).update(available_at=timezone.now())
    with on_commit():
        assert outbox.sweep() == 1
    [pull] = portal.pulls[("acme", "cache")]
    promotion = Promotion.objects.get()
    assert promotion.pr_number == pull["number"] and promotion.pr_url == pull["html_url"]
    assert pull["head"]["ref"] == body["branch"] and pull["base"]["ref"] == "main"
    # the branch carries the promoted base once, and the policy's verdict is on its head
    subjects = portal.log("acme", "cache", body["branch"])
    assert subjects[0].startswith("Promote cache from acme-dev")
    assert sum(s.startswith("Promote cache") for s in subjects) == 1
    [status] = portal.statuses[("acme", "cache", pull["head"]["sha"])]
    assert status["status"] == "success"
    # the portal's promotion keeps the revision it promotes, whatever the webhook says
    portal.flush()
    assert Promotion.objects.get().source_revision == body["source_revision"]
    assert outbox.sweep() == 0
    with on_commit():
        merged = admin.post(f"/api/v1/promotions/{promotion.pk}/merge")
    assert merged.status_code == 200 and merged.json()["state"] == "merged"
