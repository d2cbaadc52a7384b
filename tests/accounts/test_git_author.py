"""Display names and e-mails cannot forge or break a commit's author header.
Issue 9, defect 11 (`git fsck` reported missingEmail / badDate)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.accounts.conftest import last_pin
from tests.gitutil import git, repo_path

FORGED = [
    pytest.param("Alice Admin <alice@demo.local>", id="angle-brackets"),
    pytest.param("Eve\n1700000000 +0000\nparent 0000", id="newline"),
    pytest.param("Mallory>\r<evil@example.test", id="cr-and-brackets"),
]


def fsck() -> str:
    result = subprocess.run(
        ["git", "--git-dir", str(repo_path("system", "catalyst-config")), "fsck", "--strict"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def create_org(client: Client, on_commit: Any) -> None:
    with on_commit():
        response = client.post(
            "/orgs/new/", {"slug": "newco", "display_name": "New Co", "default_env_type": "prod"}
        )
    assert response.status_code == 302, response.content


@pytest.mark.parametrize("name", FORGED)
def test_an_existing_users_name_cannot_forge_the_author(
    sovereign: Any, on_commit: Any, name: str
) -> None:
    user = get_user_model().objects.create_user(
        "mallory", email="mallory@example.test", first_name=name
    )
    client = Client()
    client.force_login(user)
    create_org(client, on_commit)

    assert "missingEmail" not in fsck() and "badDate" not in fsck()
    author = git("system", "catalyst-config", "log", "-1", "--format=%an|%ae", "main").strip()
    shown_name, email = author.split("|")
    assert email == "mallory@example.test"
    assert "<" not in shown_name and ">" not in shown_name and "alice@demo.local" not in email
    raw = git("system", "catalyst-config", "cat-file", "commit", "main")
    author_lines = [line for line in raw.splitlines() if line.startswith("author ")]
    assert len(author_lines) == 1 and author_lines[0].count("<") == 1


@pytest.mark.parametrize("name", FORGED)
def test_sign_up_stores_a_clean_display_name(sovereign: Any, on_commit: Any, name: str) -> None:
    client = Client()
    started = client.post(
        "/signup/",
        {"email": "eve@example.test", "name": name, "password1": "", "password2": ""},
    )
    assert started.status_code == 302, started.content
    client.post(started["Location"], {"pin": last_pin("eve@example.test")})
    user = get_user_model().objects.get(email="eve@example.test")
    assert not set("<>\r\n") & set(user.get_full_name())
    create_org(client, on_commit)
    fsck()
