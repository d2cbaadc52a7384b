"""The IaC editor (issue 16): values.yaml edited as code, validated on the server (authoritative:
field paths with their line), committed on save with the person's message. The third view of the
same change as the form."""

from __future__ import annotations

import json

import pytest
import yaml
from django.contrib.staticfiles import finders

from core.models import AuditEvent
from marketplace.models import Application
from tests.gitutil import commits, git, show

pytestmark = pytest.mark.django_db
API = "/api/v1/orgs/acme/environments/acme-prod/applications/"
EDITOR = "/marketplace/apps/acme-prod/cache/editor/"


@pytest.fixture
def cache(catalog, cast, client_for, on_commit):
    with on_commit():
        response = client_for(cast["admin"]).post(
            API, {"name": "cache", "blueprint": "bp-valkey"}, content_type="application/json"
        )
    assert response.status_code == 201
    return Application.objects.get(name="cache")


def test_editor_shows_the_committed_file_and_the_schema(cache, cast, client_for):
    page = client_for(cast["admin"]).get(EDITOR)
    html = page.content.decode()
    assert page.status_code == 200
    committed = show("values.yaml", "acme", "cache")
    assert json.loads(_script(html, "committed-values")) == committed
    schema = json.loads(_script(html, "config-schema"))
    assert "persistence" in schema["properties"] and "password" not in schema["properties"]
    assert 'type="module" src="/static/marketplace/editor.js"' in html
    assert finders.find("marketplace/editor.js"), "make assets bundles the editor"
    # the form links to the editor and back: two views of one change
    assert (
        EDITOR
        in client_for(cast["admin"]).get("/marketplace/apps/acme-prod/cache/edit/").content.decode()
    )
    assert client_for(cast["viewer"]).get(EDITOR).status_code == 403
    assert client_for(cast["member_b"]).get(EDITOR).status_code == 404


def _script(html: str, element_id: str) -> str:
    start = html.index(f'<script id="{element_id}" type="application/json">') + len(
        f'<script id="{element_id}" type="application/json">'
    )
    return html[start : html.index("</script>", start)]


def test_invalid_yaml_is_refused_with_paths_and_lines(cache, cast, client_for, on_commit):
    admin = client_for(cast["admin"])
    before = commits("acme", "cache")
    text = "architecture: standalone\npersistence:\n  enabled: true\n  size: huge\n"
    with on_commit():
        refused = admin.post(EDITOR, {"values_yaml": text, "message": "bigger"})
    html = refused.content.decode()
    assert refused.status_code == 400
    assert "<code>values.persistence.size</code> (line 4)" in html
    assert text.replace("\n", "") in html.replace("\n", "")  # the person's text is kept
    with on_commit():
        broken = admin.post(EDITOR, {"values_yaml": "persistence: [1,\n", "message": "x"})
    assert broken.status_code == 400 and "Not valid YAML (line" in broken.content.decode()
    with on_commit():
        secret = admin.post(EDITOR, {"values_yaml": "password: hunter2hunter2hunter2\n"})
    assert secret.status_code == 400 and "generated in the cluster" in secret.content.decode()
    assert commits("acme", "cache") == before
    assert Application.objects.get(pk=cache.pk).values["persistence"]["size"] == "2Gi"


def test_save_commits_with_the_message(cache, cast, client_for, on_commit):
    admin = client_for(cast["admin"])
    text = "# sessions need room\narchitecture: replication\npersistence:\n  size: 8Gi\n"
    with on_commit():
        saved = admin.post(
            EDITOR, {"values_yaml": text, "message": "Room for sessions\n\nTicket 42"}
        )
    assert saved.status_code == 302
    app = Application.objects.get(pk=cache.pk)
    assert app.values == {
        "architecture": "replication",
        "persistence": {"enabled": True, "size": "8Gi"},
    }
    assert commits("acme", "cache")[0] == "Room for sessions"
    assert show("values.yaml", "acme", "cache") == text  # committed as written, comment and all
    full = git("acme", "cache", "log", "-1", "--format=%B", "main")
    assert "Ticket 42" in full and "applications.update: application acme-prod/cache" in full
    event = AuditEvent.objects.filter(action="applications.update").get()
    assert event.actor == cast["admin"] and event.after["message"].startswith("Room for sessions")
    rendered = yaml.safe_load(
        show("overlays/acme-prod/hz-fsn-rtz-prod/values.yaml", "acme", "cache")
    )
    assert rendered["architecture"] == "replication"
    # the wrong role changes nothing
    assert client_for(cast["viewer"]).post(EDITOR, {"values_yaml": "{}"}).status_code == 403
