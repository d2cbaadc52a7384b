"""What the issue-13 speed figures rest on (bench/bench_marketplace.py): the WordPress install
preview and the rollback read each thing once and pass it down. Through HTTP on the real
database, the response and the commit asserted, the SQL statements counted: a statement sent
twice with the same parameters is a read repeated, and the totals are bounded (the rollback
includes its delivery: tasks run in the request here, as in the bench)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml
from django.db import connection
from django.test.signals import template_rendered
from django.test.utils import CaptureQueriesContext

from marketplace.models import Application
from tests.gitutil import commits, show

pytestmark = pytest.mark.django_db
API = "/api/v1/orgs/acme/environments/acme-prod/applications/"
WORDPRESS = {
    "name": "blog",
    "blueprint": "bp-wordpress",
    "values": {"domain": "blog.acme.test", "admin": {"email": "ops@acme.test"}},
    "dependencies": {"db": "new"},
}
# the test database wraps every transaction of the code in a savepoint: not a round trip the
# portal makes in production, so not counted
TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"] for q in queries.captured_queries if not q["sql"].startswith(TRANSACTION_CONTROL)
    ]


def _reads(statements: list[str], table: str) -> int:
    return sum(1 for sql in statements if sql.startswith("SELECT") and f'FROM "{table}"' in sql)


def _repeated(statements: list[str]) -> dict[str, int]:
    return {sql[:160]: n for sql, n in Counter(statements).items() if n > 1}


def test_the_wordpress_preview_reads_each_thing_once(catalog, cast, client_for):
    admin = client_for(cast["admin"])
    admin.post(API + "plan", {**WORDPRESS, "name": "warm"}, content_type="application/json")
    with CaptureQueriesContext(connection) as queries:
        response = admin.post(API + "plan", WORDPRESS, content_type="application/json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert [a["name"] for a in body["apps"]] == ["blog-db", "blog"]
    blog = next(w for w in body["wiring"] if w["application"] == "blog")
    wired = {v["path"]: v for v in blog["values"]}
    assert wired["externalDatabase.host"]["value"] == "blog-db"
    assert {f["path"] for f in body["files"]} >= {
        "overlays/acme-prod/hz-fsn-rtz-prod/values.yaml",
        "applications/acme/acme-prod/blog/gitrepository.yaml",
    }
    assert body["price"] is not None and Application.objects.count() == 0  # nothing installed
    statements = _statements(queries)
    assert _repeated(statements) == {}
    # session, user, Environment + regions + grants, the versions with their Blueprint, the
    # dependency's versions, the names taken, the plan, the Sovereign and the policy to render,
    # the price (Sovereign terms, prices)
    assert len(statements) <= 14, "\n".join(statements)
    # the wrong role is refused
    viewer = client_for(cast["viewer"]).post(
        API + "plan", WORDPRESS, content_type="application/json"
    )
    assert viewer.status_code == 403


def _install_and_resize(admin: Any, on_commit: Any) -> None:
    with on_commit():
        made = admin.post(
            API, {"name": "cache", "blueprint": "bp-valkey"}, content_type="application/json"
        )
    assert made.status_code == 201, made.json()
    with on_commit():
        resized = admin.post(
            API + "cache/resize", {"size": "medium"}, content_type="application/json"
        )
    assert resized.status_code == 200, resized.json()


def test_a_rollback_and_its_delivery_read_each_thing_once(catalog, cast, client_for, on_commit):
    admin = client_for(cast["admin"])
    _install_and_resize(admin, on_commit)
    before = commits("acme", "cache")
    rendered: list[str] = []

    def seen(sender: Any, template: Any, **kwargs: Any) -> None:
        rendered.append(template.name or "")

    template_rendered.connect(seen)
    try:
        with CaptureQueriesContext(connection) as queries, on_commit():
            response = admin.post(
                API + "cache/rollback", {"revision": 1}, content_type="application/json"
            )
    finally:
        template_rendered.disconnect(seen)
    assert response.status_code == 200, response.json()
    assert response.json()["size"] == "small" and response.json()["git"]["state"] == "in-sync"
    assert commits("acme", "cache") == [
        "applications.rollback: application acme-prod/cache",
        *before,
    ]
    values = yaml.safe_load(show("overlays/acme-prod/hz-fsn-rtz-prod/values.yaml", "acme", "cache"))
    assert values["primary"]["resources"]["requests"]["memory"] == "128Mi"  # small again
    app = Application.objects.get(name="cache")
    assert app.size == "small" and app.last_commit_sha and app.state == "committed"
    statements = _statements(queries)
    # rendered once for the app repo and the config repo, not once per tree
    assert _reads(statements, "orgs_sovereign") == 1
    assert _reads(statements, "orgs_hostcluster") == 1  # the Environment's regions
    assert _reads(statements, "marketplace_environmentpolicy") == 1
    # the branch state: read with the row (and checked) before the change, read by the
    # delivery; the response reads it with the row
    assert _reads(statements, "marketplace_gitsync") == 1
    assert _reads(statements, "gitops_fluxobject") == 1  # under the row lock
    assert _reads(statements, "marketplace_blueprintversion") == 0  # the version is unchanged
    # the delivery says that the Application changed; nobody follows it, nothing is rendered
    # (the status fragment is rendered by the streams that follow the Application)
    assert rendered == []
    # the Application row: read by the access check, locked by the change, read by the
    # delivery, locked to record what Flux says, read for the response
    assert _reads(statements, "marketplace_application") <= 6
    assert len(statements) <= 28, "\n".join(statements)
    # the wrong role is refused and changes nothing
    refused = client_for(cast["viewer"]).post(
        API + "cache/rollback", {"revision": 2}, content_type="application/json"
    )
    assert refused.status_code == 403 and Application.objects.get(name="cache").size == "small"


def test_the_status_timeline_reads_a_bounded_history(catalog, cast, client_for, on_commit):
    """The status fragment (on the page and in each live update) shows the last 50 steps: it
    reads at most 50 rows of each source, whatever the history — and shows exactly the steps it
    showed when it read everything (a task retried for long counts by its last step, not its
    first)."""
    from django.utils import timezone

    from core.models import OutboxItem
    from marketplace import status

    admin = client_for(cast["admin"])
    _install_and_resize(admin, on_commit)
    for size in ["small", "medium"] * 7:
        with on_commit():
            done = admin.post(API + "cache/resize", {"size": size}, content_type="application/json")
        assert done.status_code == 200, done.json()
    app = Application.objects.get(name="cache")
    oldest = (
        OutboxItem.objects.filter(
            audit_event__target_type="marketplace.application", audit_event__target_id=str(app.pk)
        )
        .order_by("pk")
        .first()
    )
    assert oldest is not None
    OutboxItem.objects.filter(pk=oldest.pk).update(
        done_at=None, last_error="Gitea answered 503", available_at=timezone.now()
    )
    everything = status.timeline(app, limit=10_000)
    assert len(everything) > 60  # more history than is shown
    with CaptureQueriesContext(connection) as queries:
        shown = status.timeline(app, seen=[])
    assert shown == everything[-50:]
    assert shown[-1].title == "Task retrying" and shown[-1].detail == "Gitea answered 503"
    assert len(_statements(queries)) == 2  # the audit events, the tasks
    assert all(" LIMIT 50" in sql for sql in _statements(queries))
    # the page shows it to a reader
    page = client_for(cast["viewer"]).get("/marketplace/apps/acme-prod/cache/").content.decode()
    assert page.count('data-step="') == 50 and "Gitea answered 503" in page


def test_reading_an_application_reads_its_row_once(catalog, cast, client_for, on_commit):
    """The API reads the row with what it answers (version, Environment, branch state) in the
    access check, and only a change reads it again."""
    _install_and_resize(client_for(cast["admin"]), on_commit)
    viewer = client_for(cast["viewer"])
    with CaptureQueriesContext(connection) as queries:
        response = viewer.get(API + "cache/")
    assert response.status_code == 200 and response.json()["git"]["state"] == "in-sync"
    assert response.json()["size"] == "medium" and response.json()["unused_dependencies"] == []
    statements = _statements(queries)
    # the row (with its version, Environment and branch state), then the Environment's
    # Applications (which dependencies nothing else uses)
    assert _reads(statements, "marketplace_application") == 2, "\n".join(statements)
    assert _reads(statements, "marketplace_gitsync") == 0
    assert client_for(cast["outsider"]).get(API + "cache/").status_code == 404


def test_a_rollback_costs_the_same_whatever_the_applications_history(
    catalog, cast, client_for, on_commit
):
    """A rollback reads the configuration of the revision it restores, not every revision's:
    the audit events it loads (and the statements it sends) do not grow with the history."""
    from django.db.models.signals import post_init

    from core.models import AuditEvent

    admin = client_for(cast["admin"])
    _install_and_resize(admin, on_commit)

    def rollback_to(number: int) -> tuple[int, int]:
        loaded: list[Any] = []

        def count(sender: Any, instance: Any, **kwargs: Any) -> None:
            loaded.append(instance)

        post_init.connect(count, sender=AuditEvent)
        try:
            with CaptureQueriesContext(connection) as queries, on_commit():
                done = admin.post(
                    API + "cache/rollback", {"revision": number}, content_type="application/json"
                )
        finally:
            post_init.disconnect(count, sender=AuditEvent)
        assert done.status_code == 200, done.json()
        return len(loaded), len(_statements(queries))

    short = rollback_to(1)  # three revisions: install, resize, this rollback's (small again)
    for size in ["medium", "small"] * 6:
        with on_commit():
            resized = admin.post(
                API + "cache/resize", {"size": size}, content_type="application/json"
            )
        assert resized.status_code == 200, resized.json()
    long = rollback_to(2)  # fifteen revisions
    assert long == short
    assert Application.objects.get(name="cache").size == "medium"  # revision 2: the resize
    refused = admin.post(API + "cache/rollback", {"revision": 99}, content_type="application/json")
    assert refused.status_code == 400 and "has no revision 99" in str(refused.json())
