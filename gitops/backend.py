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
