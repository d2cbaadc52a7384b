"""gitops/trees.py writes the same trees dulwich (and git) would, and git fsck accepts them."""

from __future__ import annotations

import random
import subprocess

from dulwich.object_store import commit_tree_changes
from dulwich.objects import Blob, Tree
from dulwich.repo import Repo

from gitops import trees
from gitops.backend import Author
from gitops.local import LocalGitBackend

MODE = 0o100644


def _blob(repo: Repo, text: str) -> bytes:
    blob = Blob.from_string(text.encode())
    repo.object_store.add_object(blob)
    return blob.id


def test_random_edits_give_the_trees_dulwich_gives(tmp_path):
    repo = Repo.init_bare(str(tmp_path / "r.git"), mkdir=True)
    store = trees.TreeStore(repo.object_store)
    rng = random.Random(7)
    names = [f"organizations/o{i:03d}/{f}" for i in range(60) for f in ("a.yaml", "env/b.yaml")]
    names += ["organizations.yaml", "organizations-x/c.yaml", "access/global/g.yaml"]
    ours: bytes | None = None
    theirs: bytes | Tree = Tree()
    present: set[str] = set()
    for _round in range(40):
        edits = []
        for path in rng.sample(names, 8):
            if path in present and rng.random() < 0.4:
                edits.append((path.encode(), None, None))
                present.discard(path)
            else:
                edits.append((path.encode(), MODE, _blob(repo, f"{path} {rng.random()}")))
                present.add(path)
        ours = store.edit(ours, edits) or store.write(trees.Entries([], []))
        theirs = commit_tree_changes(repo.object_store, theirs, edits)
        assert ours == theirs
    fsck = subprocess.run(
        ["git", "--git-dir", str(tmp_path / "r.git"), "fsck", "--strict", "--unreachable"],
        capture_output=True,
        text=True,
    )
    assert fsck.returncode == 0, fsck.stderr


def test_lookup_finds_files_and_directories_and_not_prefixes(tmp_path):
    git = LocalGitBackend(tmp_path, committer=Author("t", "t@x"))
    git.ensure_org("o")
    git.ensure_repo("o", "r")
    head = git.head("o", "r", "main")
    git.commit(
        "o",
        "r",
        "main",
        changes={"a/b.yaml": b"1", "a-b/c.yaml": b"2", "a.yaml": b"3"},
        expected_head=head,
        author=Author("t", "t@x"),
        message="m",
    )
    assert git.read_file("o", "r", "main", "a/b.yaml") == b"1"
    assert git.read_file("o", "r", "main", "a.yaml") == b"3"
    assert git.read_file("o", "r", "main", "a/c.yaml") is None
    assert sorted(git.read_tree("o", "r", "main", "a/").blobs) == ["a/b.yaml"]
    assert git.read_tree("o", "r", "main", "a-b/").blobs.keys() == {"a-b/c.yaml"}
    assert git.read_tree("o", "r", "main", "nope/").blobs == {}
    out = subprocess.run(
        ["git", "--git-dir", str(tmp_path / "o" / "r.git"), "fsck", "--strict"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


def test_commits_keep_working_after_git_gc_packs_the_objects(tmp_path):
    git = LocalGitBackend(tmp_path, committer=Author("t", "t@x"))
    git.ensure_org("o")
    git.ensure_repo("o", "r")
    author = Author("t", "t@x")
    head = git.commit(
        "o",
        "r",
        "main",
        changes={"a/b.yaml": b"1"},
        expected_head=git.head("o", "r", "main"),
        author=author,
        message="one",
    )
    subprocess.run(["git", "--git-dir", str(tmp_path / "o" / "r.git"), "gc", "-q"], check=True)
    trees._cache.clear()  # another process: nothing parsed yet, every object packed
    git.commit(
        "o",
        "r",
        "main",
        changes={"a/c.yaml": b"2"},
        expected_head=head,
        author=author,
        message="two",
    )
    assert git.read_tree("o", "r", "main", "a/").blobs.keys() == {"a/b.yaml", "a/c.yaml"}
