"""Work that must not grow with the number of Organizations.

`python -m bench bench_scale` (BENCH_SCALE_ORGS=100,2000,20000 to choose the sizes)

- one Organization's commit to `system/catalyst-config` holding N Organizations, through
  `gitops.sync` on the local backend (read the Organization's subtree, diff, commit, move the
  ref) — beside the same commit made the way it was before (dulwich `tree_lookup_path` and
  `commit_tree_changes`, which parse and re-serialize every entry of the `organizations` tree),
  on the same repository in the same run; wall time and this process's CPU time;
- the periodic catalog sync with 2,000 Organizations when nothing changed, beside the same sync
  forced to read every source (what every sync did before).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, report, setup_django, throwaway_database

SIZES = [int(n) for n in os.environ.get("BENCH_SCALE_ORGS", "100,2000,20000").split(",")]
REPEAT = 30
CATALOG_ORGS = 2000


def _org_yaml(slug: str, n: int) -> str:
    return f"kind: Organization\nmetadata:\n  name: {slug}\nspec:\n  displayName: {slug} {n}\n"


def _old_commit(git: Any, slug: str, n: int) -> None:
    """The commit as the local backend made it before gitops/trees.py."""
    from dulwich.object_store import commit_tree_changes, iter_tree_contents, tree_lookup_path
    from dulwich.objects import Blob, Commit

    with git._open("system", "catalyst-config") as r:
        ref = b"refs/heads/main"
        head = r.refs[ref]
        _mode, sub = tree_lookup_path(r.__getitem__, r[head].tree, f"organizations/{slug}".encode())
        list(iter_tree_contents(r.object_store, sub))
        blob = Blob.from_string(_org_yaml(slug, n).encode())
        r.object_store.add_object(blob)
        path = f"organizations/{slug}/organization.yaml".encode()
        tree = commit_tree_changes(r.object_store, r[head].tree, [(path, 0o100644, blob.id)])
        c = Commit()
        c.tree, c.parents = tree, [head]
        c.author = c.committer = b"bench <bench@example.test>"
        c.commit_time = c.author_time = int(time.time())
        c.commit_timezone = c.author_timezone = 0
        c.message = b"old\n"
        r.object_store.add_object(c)
        assert r.refs.set_if_equals(ref, head, c.id)


def _timed(fn: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def commit_cost() -> None:
    from gitops import sync as gitops_sync
    from gitops.backend import Author
    from gitops.local import LocalGitBackend
    from gitops.sync import Desired

    gitops_sync.validate_files = lambda files: None  # bare YAML: the bench times Git, not schemas
    author = Author("bench", "bench@example.test")
    for count in SIZES:
        root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        git = LocalGitBackend(root, committer=author)
        git.ensure_org("system")
        git.ensure_repo("system", "catalyst-config")
        git.commit(
            "system",
            "catalyst-config",
            "main",
            changes={
                f"organizations/o{i:05d}/organization.yaml": _org_yaml(f"o{i:05d}", 0).encode()
                for i in range(count)
            },
            expected_head=git.head("system", "catalyst-config", "main"),
            author=author,
            message="seed",
        )
        new: list[tuple[float, float]] = []
        old: list[tuple[float, float]] = []
        for k in range(REPEAT):
            slug = f"o{(k * 7919) % count:05d}"
            desired = Desired(
                owner="system",
                repo="catalyst-config",
                branch="main",
                root=f"organizations/{slug}/",
                files={f"organizations/{slug}/organization.yaml": _org_yaml(slug, k + 1)},
            )
            new.append(
                _timed(
                    lambda d=desired, g=git: gitops_sync.sync(d, author=author, message="m", git=g)
                )
            )
            old.append(_timed(lambda s=slug, n=k, g=git: _old_commit(g, s, n + 1000)))
        report(
            f"one org commit at {count} orgs (wall)",
            median([w for w, _ in new]),
            target=30 if count >= 20000 else None,
            baseline=median([w for w, _ in old]),
            baseline_name="before (dulwich commit_tree_changes)",
        )
        report(
            f"one org commit at {count} orgs (CPU)",
            median([c for _, c in new]),
            baseline=median([c for _, c in old]),
            baseline_name="before",
        )


def catalog_sync() -> None:
    from marketplace import loader
    from orgs.models import Organization

    Organization.objects.bulk_create(
        Organization(slug=f"scale-{i:05d}", display_name=f"Scale {i}") for i in range(CATALOG_ORGS)
    )
    loader.sync_all()  # the first sync reads everything
    start = time.perf_counter()
    results = loader.sync_all()
    unchanged = time.perf_counter() - start
    start = time.perf_counter()
    loader.sync_all(force=True)
    forced = time.perf_counter() - start
    assert results[f"org:scale-{CATALOG_ORGS - 1:05d}"] == {"unchanged": 1}
    report(
        f"catalog sync, {CATALOG_ORGS} orgs, nothing changed",
        unchanged,
        unit="s",
        baseline=forced,
        baseline_name="every source read (before)",
    )


def main() -> None:
    os.environ.setdefault("GIT_ROOT", tempfile.mkdtemp(prefix="bench-scale-git-"))
    setup_django()
    commit_cost()
    with throwaway_database():
        catalog_sync()


if __name__ == "__main__":
    main()
