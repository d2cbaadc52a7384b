"""The Git backend interface shared by the local bare-repo backend and the Gitea backend."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol


class GitError(Exception):
    """The Git server could not do what was asked; retrying later may succeed."""


class GitConflict(GitError):
    """The branch moved between read and commit (compare-and-swap lost)."""


@dataclass(frozen=True)
class Author:
    name: str
    email: str


@dataclass(frozen=True)
class Tree:
    """A branch's head commit and its files under one root as {path: blob sha}."""

    head: str | None
    blobs: dict[str, str]


def blob_sha(content: bytes) -> str:
    """Git's object id of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


class GitBackend(Protocol):
    def ensure_org(self, owner: str, *, description: str = "") -> None: ...

    def ensure_repo(
        self, owner: str, repo: str, *, default_branch: str = "main", description: str = ""
    ) -> None:
        """Create the repo with an initial commit (README.md) on `default_branch` unless it exists."""
        ...

    def ensure_branch(self, owner: str, repo: str, branch: str, *, from_branch: str) -> None:
        """Create `branch` at the head of `from_branch` unless it exists."""
        ...

    def read_tree(self, owner: str, repo: str, branch: str, root: str) -> Tree:
        """The files under `root` ("" for all) on `branch`; head None when the branch does not exist."""
        ...

    def read_file(self, owner: str, repo: str, branch: str, path: str) -> bytes | None: ...

    def commit(
        self,
        owner: str,
        repo: str,
        branch: str,
        *,
        changes: dict[str, bytes | None],
        expected_head: str | None,
        author: Author,
        message: str,
    ) -> str:
        """Write (bytes) or delete (None) the paths in one commit on top of `expected_head`.

        Raises GitConflict when the branch head is no longer `expected_head`. Returns the new sha.
        """
        ...
