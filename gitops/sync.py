"""Level-triggered delivery: make a subtree of a branch equal to the desired files.

`sync()` renders nothing itself; a domain app passes the complete desired files of one object
(`{path: text}` under one root). Paths under the root that are not desired are deleted — only the
paths the object owns (`owned` patterns) when it shares its root with files people add by hand, so
those are kept. When the tree already matches, no commit is made, so running a sync twice is a
no-op and a retry converges.

Git is a surface too: with `base` (the blobs of the owned files as the portal last wrote or read
them), an owned file that differs from both `base` and the desired content was changed in Git by
someone else, and `sync()` raises `GitDrift` instead of overwriting it; the domain app reads that
change back (adopts it, flags it as invalid, or shows the conflict).
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from itertools import pairwise

from django.conf import settings

from core import metrics

from .backend import Author, GitBackend, GitConflict, GitDrift, blob_sha
from .validation import ManifestError, validate_files

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 8


@dataclass(frozen=True)
class Desired:
    owner: str
    repo: str
    branch: str
    root: str
    files: dict[str, str] = field(default_factory=dict)
    default_branch: str = "main"
    # glob patterns of the paths this object owns under root (empty: every path under root)
    owned: tuple[str, ...] = ()
    # {path: blob sha} of the owned files as the portal last wrote or read them (None: no guard)
    base: dict[str, str] | None = None
    # push webhooks from this repo to the portal (Gitea): Git is a surface for this object
    watch: bool = False

    def __post_init__(self) -> None:
        if self.root and not self.root.endswith("/"):
            raise ValueError(f"root {self.root!r} must end with '/'")
        outside = [p for p in self.files if not p.startswith(self.root) or ".." in p.split("/")]
        if outside:
            raise ValueError(f"paths outside {self.root!r}: {outside}")
        unowned = [p for p in self.files if not self.owns(p)]
        if unowned:
            raise ValueError(f"desired paths not owned: {unowned}")

    def owns(self, path: str) -> bool:
        if not path.startswith(self.root):
            return False
        if not self.owned:
            return True
        exact, globs = self._owned_split
        return path in exact or any(fnmatch.fnmatchcase(path, p) for p in globs)

    @cached_property
    def _owned_split(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """Plain paths compared as strings (fnmatch compiles a regex per new pattern: costly
        when every Application brings its own paths), glob patterns matched."""
        globs = tuple(p for p in self.owned if any(c in p for c in "*?["))
        return frozenset(self.owned) - frozenset(globs), globs

    def owned_blobs(self, blobs: dict[str, str]) -> dict[str, str]:
        return {p: sha for p, sha in blobs.items() if self.owns(p)}

    def drift(self, current: dict[str, str]) -> list[str]:
        """Owned paths changed in Git since `base` that are not already as desired."""
        if self.base is None:
            return []
        owned = self.owned_blobs(current)
        wanted = {p: blob_sha(t.encode()) for p, t in self.files.items()}
        return sorted(
            p
            for p in set(owned) | set(self.base)
            if owned.get(p) != self.base.get(p) and owned.get(p) != wanted.get(p)
        )


@dataclass(frozen=True)
class SyncResult:
    head: str | None
    committed: bool
    changes: dict[str, bytes | None]
    blobs: dict[str, str] = field(default_factory=dict)  # the owned files at `head`


@cache
def backend() -> GitBackend:
    committer = Author(settings.GIT_COMMITTER_NAME, settings.GIT_COMMITTER_EMAIL)
    if settings.GITEA_URL:
        from .gitea import GiteaBackend

        return GiteaBackend(
            settings.GITEA_URL,
            settings.GITEA_TOKEN,
            timeout=settings.GITEA_TIMEOUT_SECONDS,
            committer=committer,
        )
    from .local import LocalGitBackend

    return LocalGitBackend(settings.GIT_ROOT, committer=committer)


def ensure_repo(
    owner: str, repo: str, *, description: str = "", git: GitBackend | None = None
) -> None:
    git = git or backend()
    git.ensure_org(owner)
    git.ensure_repo(owner, repo, description=description)


def diff(desired: Desired, current: dict[str, str]) -> dict[str, bytes | None]:
    """The writes (bytes) and deletes (None) that turn `current` blobs into `desired` files."""
    wanted = {path: text.encode() for path, text in desired.files.items()}
    changes: dict[str, bytes | None] = {
        p: c for p, c in wanted.items() if current.get(p) != blob_sha(c)
    }
    changes.update({p: None for p in current if p not in wanted and desired.owns(p)})
    return changes


def plan(desired: Desired, *, git: GitBackend | None = None) -> SyncResult:
    """What sync would change, without committing (for previews)."""
    git = git or backend()
    try:
        tree = git.read_tree(desired.owner, desired.repo, desired.branch, desired.root)
    except Exception:  # repo not created yet: everything is new
        return SyncResult(
            head=None, committed=False, changes={p: t.encode() for p, t in desired.files.items()}
        )
    return SyncResult(head=tree.head, committed=False, changes=diff(desired, tree.blobs))


def sync(
    desired: Desired, *, author: Author, message: str, git: GitBackend | None = None
) -> SyncResult:
    """Make `desired.root` equal to its files in one commit (none when it already is); raises
    GitDrift, ManifestError or a GitError."""
    outcome = sync_many([desired], compose=lambda _changed: (author, message), git=git)[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


Compose = Callable[[list[int]], tuple[Author, str]]


def sync_many(
    desireds: Sequence[Desired], *, compose: Compose, git: GitBackend | None = None
) -> list[SyncResult | Exception]:
    """Group commit: ONE commit that makes each Desired's root equal to its files.

    Every Desired names the same owner, repo and branch, and their roots are disjoint (neither is
    under another). Each root is read at one head; a Desired whose files are invalid (ManifestError)
    or whose owned files drifted (GitDrift) is left out and gets its exception as its outcome,
    while the others commit. `compose(indexes)` gives the author and message of the commit from
    the indexes of the Desireds it changes (in order). The commit is made with `expected_head`, and
    when the branch moved meanwhile everything is re-read and re-checked, as `sync()` does.
    Returns an outcome per Desired, in order: a SyncResult (head: the branch head that carries its
    files; committed: whether this commit changed them) or the exception that left it out. A
    GitError of the server (unreachable, still conflicting after retries) is raised for all.
    """
    if not desireds:
        return []
    first = desireds[0]
    where = (first.owner, first.repo, first.branch)
    if any((d.owner, d.repo, d.branch) != where for d in desireds):
        raise ValueError("a group commit takes Desireds of one owner, repo and branch")
    _check_disjoint([d.root for d in desireds])
    outcomes: list[SyncResult | Exception | None] = [None] * len(desireds)
    for index, desired in enumerate(desireds):
        try:
            validate_files(desired.files)
        except ManifestError as exc:
            outcomes[index] = exc
    valid = [i for i, outcome in enumerate(outcomes) if outcome is None]
    if not valid:
        return [o for o in outcomes if o is not None]
    git = git or backend()
    _prepare(git, desireds[valid[0]], watch=any(desireds[i].watch for i in valid))
    repo_kind = (
        "config"
        if (first.owner, first.repo) == (settings.GIT_SYSTEM_OWNER, settings.GIT_CONFIG_REPO)
        else "other"
    )
    for _attempt in range(MAX_CONFLICT_RETRIES):
        head, blobs = read_roots(git, *where, [desireds[i].root for i in valid])
        changes: dict[int, dict[str, bytes | None]] = {}
        for i in valid:
            desired, current = desireds[i], blobs[desireds[i].root]
            drifted = desired.drift(current)
            if drifted:
                outcomes[i] = GitDrift(*where, head, drifted)
                continue
            outcomes[i] = None
            changes[i] = diff(desired, current)
        changed = [i for i in changes if changes[i]]
        new_head = head
        if changed:
            author, message = compose(changed)
            try:
                with metrics.timed(metrics.GIT_COMMIT_SECONDS, repo_kind):
                    new_head = git.commit(
                        *where,
                        changes={p: c for i in changed for p, c in changes[i].items()},
                        expected_head=head,
                        author=author,
                        message=message,
                    )
            except GitConflict:
                log.info("branch %s of %s/%s moved; re-reading", first.branch, *where[:2])
                continue
        for i, own in changes.items():
            desired = desireds[i]
            outcomes[i] = SyncResult(
                head=new_head,
                committed=bool(own),
                changes=own,
                blobs=(
                    {p: blob_sha(t.encode()) for p, t in desired.files.items()}
                    if own
                    else desired.owned_blobs(blobs[desired.root])
                ),
            )
        return [o for o in outcomes if o is not None]
    raise GitConflict(f"{first.owner}/{first.repo}@{first.branch} kept moving; giving up for now")


def _check_disjoint(roots: list[str]) -> None:
    ordered = sorted(roots)
    for before, after in pairwise(ordered):
        if after.startswith(before):  # "" is above every root
            raise ValueError(f"roots {before!r} and {after!r} overlap: one commit cannot own both")


def _prepare(git: GitBackend, desired: Desired, *, watch: bool) -> None:
    """The owner, repo, push hook and branch a commit lands in."""
    git.ensure_org(desired.owner)
    git.ensure_repo(desired.owner, desired.repo, default_branch=desired.default_branch)
    if watch:
        from . import hooks

        hooks.ensure_push_hook(git, desired.owner, desired.repo)
    if desired.branch != desired.default_branch:
        git.ensure_branch(
            desired.owner, desired.repo, desired.branch, from_branch=desired.default_branch
        )


def read_roots(
    git: GitBackend, owner: str, repo: str, branch: str, roots: list[str]
) -> tuple[str | None, dict[str, dict[str, str]]]:
    """The files under each root as {root: {path: blob sha}}, all at one head of `branch`
    (re-read when the branch moved between two roots). A backend with `read_trees` reads them in
    one go."""
    many = getattr(git, "read_trees", None)
    if many is not None:
        head, read = many(owner, repo, branch, roots)
        return head, read
    for _attempt in range(MAX_CONFLICT_RETRIES):
        found: dict[str, dict[str, str]] = {}
        heads: set[str | None] = set()
        for root in roots:
            tree = git.read_tree(owner, repo, branch, root)
            heads.add(tree.head)
            found[root] = tree.blobs
        if len(heads) == 1:
            return heads.pop(), found
    raise GitConflict(f"{owner}/{repo}@{branch} kept moving while reading; giving up for now")


def contains(owner: str, repo: str, descendant: str, ancestor: str) -> bool | None:
    """Whether commit `descendant` includes commit `ancestor`; None when the backend cannot tell
    (then only an exact revision match counts)."""
    if descendant == ancestor:
        return True
    check = getattr(backend(), "is_ancestor", None)
    if check is None:
        return None
    try:
        return bool(check(owner, repo, ancestor, descendant))
    except Exception:
        log.warning(
            "cannot tell whether %s contains %s in %s/%s", descendant, ancestor, owner, repo
        )
        return None
