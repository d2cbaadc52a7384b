"""The Git backend interface shared by the local bare-repo backend and the Gitea backend."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Protocol

from core.errors import DeliveryError


class GitError(DeliveryError):
    """The Git server could not do what was asked; retrying later may succeed."""


class GitStorageError(GitError):
    """The local Git storage cannot be used (permissions, a missing or read-only volume): an
    operator must act, so it is logged as an error — one line, no traceback."""

    log_level = logging.ERROR


class GitConflict(GitError):
    """The branch moved between read and commit (compare-and-swap lost)."""


class GitDrift(Exception):
    """Files the portal owns were changed in Git by someone else since the portal last wrote or
    read them: committing would overwrite that change, so nothing is written. Not a GitError: a
    retry would meet the same change; the owner of the files reads it back instead."""

    def __init__(self, owner: str, repo: str, branch: str, head: str | None, paths: list[str]):
        super().__init__(
            f"{owner}/{repo}@{branch} holds changes made outside the portal: {', '.join(paths)}"
        )
        self.owner, self.repo, self.branch, self.head, self.paths = owner, repo, branch, head, paths


# What git itself strips from identities (ident.c: "crud") plus every control character: a name
# or address holding `<`, `>` or a line break would forge or break the commit's author header.
_IDENT_UNSAFE = re.compile(r"[<>\x00-\x1f\x7f\u2028\u2029]")
NOREPLY_EMAIL = "noreply@catalyst.local"


def clean_ident(value: str) -> str:
    return " ".join(_IDENT_UNSAFE.sub(" ", value).split())


@dataclass(frozen=True)
class Author:
    """A commit's author or committer; cleaned on construction, so every backend writes a header
    `git fsck --strict` accepts, whatever a display name holds."""

    name: str
    email: str

    def __post_init__(self) -> None:
        name = clean_ident(self.name) or "unknown"
        email = "".join(clean_ident(self.email).split()) or NOREPLY_EMAIL
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "email", email)


@dataclass(frozen=True)
class Tree:
    """A branch's head commit and its files under one root as {path: blob sha}."""

    head: str | None
    blobs: dict[str, str]


@dataclass(frozen=True)
class CommitInfo:
    """A commit's id, author and subject (who changed a branch last)."""

    sha: str
    author_name: str
    author_email: str
    message: str

    @property
    def author(self) -> str:
        return self.author_name or self.author_email or "someone"


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    state: str  # open, closed
    merged: bool
    head_sha: str
    merge_sha: str = ""


@dataclass(frozen=True)
class Review:
    login: str
    state: str  # APPROVED, REQUEST_CHANGES, COMMENT, …
    commit: str


def blob_sha(content: bytes) -> str:
    """Git's object id of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


class GitBackend(Protocol):
    def ping(self) -> None:
        """Raise GitError unless the Git server can be used (readiness)."""
        ...

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

    def head(self, owner: str, repo: str, branch: str) -> str | None:
        """The branch's head commit; None when the repo or the branch does not exist."""
        ...

    def head_commit(self, owner: str, repo: str, branch: str) -> CommitInfo | None:
        """The branch's head commit with its author and message; None when the branch does not
        exist."""
        ...

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
