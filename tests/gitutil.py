"""Read the local bare repositories the portal writes, with the git CLI (an independent reader)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from django.conf import settings


def repo_path(owner: str, repo: str) -> Path:
    return Path(settings.GIT_ROOT) / owner / f"{repo}.git"


def git(owner: str, repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo_path(owner, repo)), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def commits(
    owner: str = "system", repo: str = "catalyst-config", branch: str = "main"
) -> list[str]:
    """Commit subjects on `branch`, newest first ([] when the repo does not exist)."""
    if not repo_path(owner, repo).exists():
        return []
    return git(owner, repo, "log", "--format=%s", branch).splitlines()


def show(
    path: str, owner: str = "system", repo: str = "catalyst-config", branch: str = "main"
) -> str:
    return git(owner, repo, "show", f"{branch}:{path}")


def files(owner: str = "system", repo: str = "catalyst-config", branch: str = "main") -> list[str]:
    return git(owner, repo, "ls-tree", "-r", "--name-only", branch).splitlines()
