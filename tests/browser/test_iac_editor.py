"""The IaC editor in Chromium (issue 16): CodeMirror 6 bundled from npm, the Blueprint's schema
checked as you type (the server checks again), a live diff against the committed file, and
commit on save with a message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.conf import settings

from marketplace import loader, promotion, services
from marketplace.models import Application, BlueprintVersion, CatalogSource
from orgs.models import Environment
from tests.browser.conftest import axe_violations, sign_in
from tests.conftest import PASSWORD
from tests.gitutil import commits, files, show

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _install(cast, env_name):
    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    env = Environment.objects.get(name=env_name)
    services.install(by=cast["admin"], env=env, version=version, name="cache", values={})
    return Application.objects.get(name="cache", environment=env)


@pytest.fixture
def valkey(db):
    source = CatalogSource.objects.create(
        name="public", kind="directory", location=str(settings.CATALOG_DIR)
    )
    loader.sync_source(source)
    return source


@pytest.fixture
def cache(valkey, cast):
    return _install(cast, "acme-prod")


def test_edit_values_as_code_with_validation_then_save(page, live_server, cast, cache):
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server, "admin", PASSWORD)
    page.goto(f"{live_server.url}/marketplace/apps/acme-prod/cache/")
    page.click("summary:has-text('More actions')")
    page.click("text=Edit as code")
    page.wait_for_selector(".cm-editor .cm-content")
    status = page.locator("[data-editor-status]")
    assert status.inner_text() == "Valid against the Blueprint's schema."
    assert (
        page.locator("[data-editor-diffstat]").inner_text() == "No change from the committed file."
    )

    # type a value the schema refuses: the lint marks it at once, without a round trip
    page.evaluate(
        """() => { const v = window.catalystEditor; const text = v.state.doc.toString();
        const at = text.indexOf('2Gi'); v.dispatch({changes: {from: at, to: at + 3, insert: 'lots'}}); }"""
    )
    page.wait_for_function(
        "() => document.querySelector('[data-editor-status]').dataset.valid === 'false'"
    )
    assert "persistence.size" in status.inner_text()
    page.wait_for_selector(".cm-lintRange-error")
    page.wait_for_selector(".cm-changedLine, .cm-insertedLine")  # the live diff shows the edit
    assert "1 line differs" in page.locator("[data-editor-diffstat]").inner_text()
    page.screenshot(path=str(SHOTS / "issue16-editor-invalid.png"), full_page=True)

    # saving anyway: the server is authoritative and refuses it with the path and line
    page.fill("#commit-message", "Bigger volume")
    page.click("main form[data-iac-editor] button[type=submit]")
    page.wait_for_selector("[data-editor-errors]")
    assert "values.persistence.size" in page.locator("[data-editor-errors]").inner_text()
    assert commits("acme", "cache")[0] == "applications.install: application acme-prod/cache"

    # fix it: valid again, saved with the message, committed as written
    page.wait_for_selector(".cm-editor .cm-content")
    page.evaluate(
        """() => { const v = window.catalystEditor; const text = v.state.doc.toString();
        const at = text.indexOf('lots'); v.dispatch({changes: {from: at, to: at + 4, insert: '8Gi'}}); }"""
    )
    page.wait_for_function(
        "() => document.querySelector('[data-editor-status]').dataset.valid === 'true'"
    )
    assert axe_violations(page) == []
    page.screenshot(path=str(SHOTS / "issue16-editor-valid.png"), full_page=True)
    page.click("main form[data-iac-editor] button[type=submit]")
    page.wait_for_url(f"{live_server.url}/marketplace/apps/acme-prod/cache/")
    assert commits("acme", "cache")[0] == "Bigger volume"
    assert yaml.safe_load(show("values.yaml", "acme", "cache"))["persistence"]["size"] == "8Gi"
    assert Application.objects.get(pk=cache.pk).values["persistence"]["size"] == "8Gi"
    # the only console error is the refused save's answer (400, by design)
    assert [e for e in page.js_errors if "status of 400" not in e] == []


def test_edit_dev_in_the_editor_then_promote_to_prod(page, live_server, cast, valkey):
    _install(cast, "acme-dev")
    prod = _install(cast, "acme-prod")
    promotion.set_policy(
        by=cast["admin"],
        env=prod.environment,
        rules=[
            {"name": "any-time", "type": "change-window", "cron": "* * * * *", "duration": "1h"}
        ],
    )
    sign_in(page, live_server, "admin", PASSWORD)
    page.goto(f"{live_server.url}/marketplace/apps/acme-dev/cache/editor/")
    page.wait_for_selector(".cm-editor .cm-content")
    page.evaluate(
        """() => { const v = window.catalystEditor; const text = v.state.doc.toString();
        const at = text.indexOf('standalone');
        v.dispatch({changes: {from: at, to: at + 10, insert: 'replica'}}); }"""
    )
    page.wait_for_function(
        "() => document.querySelector('[data-editor-status]').dataset.valid === 'false'"
    )
    assert "architecture" in page.locator("[data-editor-status]").inner_text()
    page.evaluate(
        """() => { const v = window.catalystEditor; const text = v.state.doc.toString();
        const at = text.indexOf('replica');
        v.dispatch({changes: {from: at, to: at + 7, insert: 'replication'}}); }"""
    )
    page.wait_for_function(
        "() => document.querySelector('[data-editor-status]').dataset.valid === 'true'"
    )
    page.fill("#commit-message", "Replicate the dev cache")
    page.click("main form[data-iac-editor] button[type=submit]")
    page.wait_for_url(f"{live_server.url}/marketplace/apps/acme-dev/cache/")
    assert commits("acme", "cache", "develop")[0] == "Replicate the dev cache"

    page.click("text=Promote to acme-prod")
    page.wait_for_selector("[data-promotion-state=open]")
    assert "+architecture: replication" in page.locator("pre.diff").inner_text()
    assert page.locator("tr[data-rule=any-time]").get_attribute("data-passed") == "true"
    assert axe_violations(page) == []
    page.screenshot(path=str(SHOTS / "issue16-promotion.png"), full_page=True)
    page.click("text=Merge into acme-prod")
    page.wait_for_url(f"{live_server.url}/marketplace/apps/acme-prod/cache/")
    assert "Promoted from acme-dev" in page.content()
    page.screenshot(path=str(SHOTS / "issue16-promoted.png"), full_page=True)
    prod.refresh_from_db()
    assert prod.values["architecture"] == "replication"
    assert (
        yaml.safe_load(show("values.yaml", "acme", "cache", "main"))["architecture"]
        == "replication"
    )
    assert not [f for f in files("acme", "cache", "main") if "hz-fsn-rtz-dev" in f]
    assert page.js_errors == []


def test_an_invalid_push_is_shown_and_replaced_on_purpose(page, live_server, cast, cache):
    """Local repositories: a teammate's commit found by the reconcile; the page says Git holds an
    invalid change, with the error, and the Git page replaces it only when asked."""
    from gitops.backend import Author
    from gitops.sync import backend
    from marketplace.tasks import reconcile_git_task

    git = backend()
    head = git.read_tree("acme", "cache", "main", "").head
    git.commit(
        "acme",
        "cache",
        "main",
        changes={"values.yaml": b"persistence:\n  size: lots\n"},
        expected_head=head,
        author=Author("Tina Teammate", "tina@example.test"),
        message="bigger",
    )
    reconcile_git_task()
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server, "admin", PASSWORD)
    page.goto(f"{live_server.url}/marketplace/apps/acme-prod/cache/")
    alert = page.locator(".git-alert")
    assert "Git holds an invalid change" in alert.inner_text()
    assert "values.persistence.size" in alert.inner_text() and "Tina Teammate" in alert.inner_text()
    page.screenshot(path=str(SHOTS / "issue16-git-invalid.png"), full_page=True)
    page.click("text=See both versions and resolve")
    page.wait_for_selector("[data-git-state=invalid]")
    assert axe_violations(page) == []
    page.screenshot(path=str(SHOTS / "issue16-git-page.png"), full_page=True)
    page.click("text=Replace Git's change with the portal's configuration")
    page.wait_for_url(f"{live_server.url}/marketplace/apps/acme-prod/cache/")
    assert page.locator(".git-alert").count() == 0
    assert commits("acme", "cache")[0] == "applications.git_overwrite: application acme-prod/cache"
    assert yaml.safe_load(show("values.yaml", "acme", "cache"))["persistence"]["size"] == "2Gi"
    assert page.js_errors == []
