"""Local bare repositories under GIT_ROOT: the embedded default backend.

Objects are written straight into the bare repo with dulwich (no working tree, no subprocess), and
the branch ref moves by compare-and-swap, so concurrent commits to one branch never lose each other.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dulwich.file import FileLocked
from dulwich.index import commit_tree
from dulwich.object_store import iter_tree_contents
from dulwich.objects import Blob, Commit
from dulwich.repo import Repo

from . import trees
from .backend import Author, CommitInfo, GitConflict, GitError, GitStorageError, Tree

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_FILE_MODE = 0o100644
T = TypeVar("T")
_lock = threading.Lock()
_ref_lock = threading.Lock()  # serializes ref moves between threads of this process


def _check_name(kind: str, value: str) -> str:
    if not _NAME.match(value) or value.endswith(".git") or ".." in value:
        raise GitError(f"invalid {kind} name {value!r}")
    return value


def _subtree(r: Repo, tree_id: bytes, root: str) -> bytes | None:
    """The tree object at directory `root` ("" or "a/b/"), or None when it does not exist."""
    if not root:
        return tree_id
    found = trees.TreeStore(r.object_store).lookup(tree_id, root.rstrip("/").encode())
    return found[1] if found and found[0] == trees.DIR_MODE else None


STALE_BUILD_SECONDS = 600


def _remove_stale_builds(path: Path) -> None:
    """Half-built copies of `path` left by a process that died while creating it."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - leftover.stat().st_mtime > STALE_BUILD_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)


def _storage_errors(method: Callable[..., T]) -> Callable[..., T]:
    """An OSError of the storage (permission denied, not a directory, disk full) becomes a
    GitStorageError naming the path and the cause."""

    @functools.wraps(method)
    def wrapper(self: LocalGitBackend, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            where = exc.filename or self.root
            raise GitStorageError(
                f"Git storage {where} cannot be used: {exc.strerror or exc} "
                f"(check GIT_ROOT={self.root} and its permissions)"
            ) from None

    return wrapper


class LocalGitBackend:
    def __init__(self, root: Path, *, committer: Author):
        self.root = Path(root)
        self.committer = committer

    def path(self, owner: str, repo: str) -> Path:
        return self.root / _check_name("owner", owner) / f"{_check_name('repo', repo)}.git"

    def _open(self, owner: str, repo: str) -> Repo:
        path = self.path(owner, repo)
        if not (path / "HEAD").exists():
            raise GitError(f"repository {owner}/{repo} does not exist")
        return Repo(str(path))

    @_storage_errors
    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise GitError(f"{self.root} is not writable by this process")

    @_storage_errors
    def ensure_org(self, owner: str, *, description: str = "") -> None:
        (self.root / _check_name("owner", owner)).mkdir(parents=True, exist_ok=True)

    @_storage_errors
    def ensure_repo(
        self, owner: str, repo: str, *, default_branch: str = "main", description: str = ""
    ) -> None:
        path = self.path(owner, repo)
        if (path / "HEAD").exists():
            return
        with _lock:
            if (path / "HEAD").exists():
                return
            _remove_stale_builds(path)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                bare = Repo.init_bare(str(tmp), mkdir=True)
                bare.refs.set_symbolic_ref(b"HEAD", f"refs/heads/{default_branch}".encode())
                if description:
                    (tmp / "description").write_text(description + "\n")
                readme = f"# {owner}/{repo}\n\n{description}\n".encode()
                self._write_commit(
                    bare,
                    None,
                    {"README.md": readme},
                    default_branch,
                    Author("Catalyst Portal", self.committer.email),
                    "Initial commit",
                )
                bare.close()
                try:
                    tmp.rename(path)  # atomic: the repo appears whole or not at all
                except OSError:
                    if not (path / "HEAD").exists():
                        raise
                    # Another process created it first: theirs stands, this copy goes.
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    @_storage_errors
    def ensure_branch(self, owner: str, repo: str, branch: str, *, from_branch: str) -> None:
        with self._open(owner, repo) as r:
            ref = f"refs/heads/{branch}".encode()
            if ref in r.refs:
                return
            base = r.refs[f"refs/heads/{from_branch}".encode()]
            r.refs.add_if_new(ref, base)

    def read_tree(self, owner: str, repo: str, branch: str, root: str) -> Tree:
        head, found = self.read_trees(owner, repo, branch, [root])
        return Tree(head=head, blobs=found[root])

    @_storage_errors
    def read_trees(
        self, owner: str, repo: str, branch: str, roots: list[str]
    ) -> tuple[str | None, dict[str, dict[str, str]]]:
        """The files under each root, all at one head (for a group commit)."""
        with self._open(owner, repo) as r:
            head = r.refs.as_dict().get(f"refs/heads/{branch}".encode())
            if head is None:
                return None, {root: {} for root in roots}
            tree = r[head].tree
            found: dict[str, dict[str, str]] = {}
            for root in roots:
                tree_id = _subtree(r, tree, root)
                found[root] = (
                    {
                        root + e.path.decode(): e.sha.decode()
                        for e in iter_tree_contents(r.object_store, tree_id)
                    }
                    if tree_id is not None
                    else {}
                )
            return head.decode(), found

    @_storage_errors
    def head(self, owner: str, repo: str, branch: str) -> str | None:
        if not (self.path(owner, repo) / "HEAD").exists():
            return None
        with self._open(owner, repo) as r:
            sha = r.refs.as_dict().get(f"refs/heads/{branch}".encode())
            return sha.decode() if sha is not None else None

    @_storage_errors
    def read_file(self, owner: str, repo: str, branch: str, path: str) -> bytes | None:
        with self._open(owner, repo) as r:
            head = r.refs.as_dict().get(f"refs/heads/{branch}".encode())
            if head is None:
                return None
            found = trees.TreeStore(r.object_store).lookup(r[head].tree, path.encode())
            if found is None:
                return None
            obj = r[found[1]]
            return obj.data if isinstance(obj, Blob) else None

    @_storage_errors
    def head_commit(self, owner: str, repo: str, branch: str) -> CommitInfo | None:
        with self._open(owner, repo) as r:
            head = r.refs.as_dict().get(f"refs/heads/{branch}".encode())
            if head is None:
                return None
            return commit_info(head.decode(), r[head].author, r[head].message)

    @_storage_errors
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
        with self._open(owner, repo) as r:
            return self._write_commit(r, expected_head, changes, branch, author, message)

    def _write_commit(
        self,
        r: Repo,
        expected_head: str | None,
        changes: dict[str, bytes | None],
        branch: str,
        author: Author,
        message: str,
    ) -> str:
        ref = f"refs/heads/{branch}".encode()
        parents: list[bytes] = []
        edits: list[tuple[bytes, int | None, bytes | None]] = []
        for path, content in sorted(changes.items()):
            if content is None:
                edits.append((path.encode(), None, None))
                continue
            blob = Blob.from_string(content)
            r.object_store.add_object(blob)
            edits.append((path.encode(), _FILE_MODE, blob.id))
        if expected_head:
            parent = r[expected_head.encode()]
            parents = [parent.id]
            # Only the trees on changed paths are rewritten, without parsing the rest (trees.py).
            store = trees.TreeStore(r.object_store)
            tree_id = store.edit(parent.tree, edits) or store.write(trees.Entries([], []))
        else:
            tree_id = commit_tree(
                r.object_store, [(p, sha, mode) for p, mode, sha in edits if sha is not None]
            )
        c = Commit()
        c.tree = tree_id
        c.parents = parents
        c.author = f"{author.name} <{author.email}>".encode()
        c.committer = f"{self.committer.name} <{self.committer.email}>".encode()
        c.commit_time = c.author_time = int(time.time())
        c.commit_timezone = c.author_timezone = 0
        c.encoding = b"UTF-8"
        c.message = message.encode() if message.endswith("\n") else (message + "\n").encode()
        r.object_store.add_object(c)
        try:
            with _ref_lock:  # other processes meet dulwich's ref lock file instead
                moved = (
                    r.refs.set_if_equals(ref, expected_head.encode(), c.id)
                    if expected_head
                    else r.refs.add_if_new(ref, c.id)
                )
        except FileLocked:
            raise GitConflict(f"{branch} is being moved by another writer") from None
        if not moved:
            raise GitConflict(f"{branch} moved while committing")
        return c.id.decode()

    @_storage_errors
    def is_ancestor(self, owner: str, repo: str, ancestor: str, descendant: str) -> bool:
        """Whether commit `ancestor` is `descendant` or in its history."""
        git = self._open(owner, repo)
        try:
            walker = git.get_walker(include=[descendant.encode()])
            return any(entry.commit.id.decode() == ancestor for entry in walker)
        except KeyError:
            return False


def commit_info(sha: str, author: bytes, message: bytes) -> CommitInfo:
    name, _, email = author.decode("utf-8", "replace").rpartition(" <")
    subject = message.decode("utf-8", "replace").strip().splitlines()
    return CommitInfo(sha, name.strip(), email.rstrip(">").strip(), subject[0] if subject else "")
